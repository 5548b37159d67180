// What IoT Hub does for IoT Edge devices beyond plain modules: an edge device gets the system
// modules `$edgeAgent` and `$edgeHub` when it is created (or becomes an edge device), and a
// deployment is applied with `POST /devices/{id}/applyConfigurationContent` (`az iot edge
// set-modules`, Registry.applyConfigurationContentOnDevice): each module named in
// `modulesContent` gets the given desired properties, made first when it does not exist.
import { ProvisioError } from "../domain/errors.js";
import type { DeviceIdentity } from "../domain/hub.js";
import { isObject, type JsonObject } from "../domain/json.js";
import type { HubRuntime } from "./builtin-hubs.js";
import { isValidHubDeviceId, moduleKey } from "./device-identity.js";
import type { HubRegistry } from "./registry.js";

export const EDGE_SYSTEM_MODULES = ["$edgeAgent", "$edgeHub"] as const;

/** Makes a module unless it exists (its keys are generated, as IoT Hub does). */
async function ensureModule(modules: HubRegistry, deviceId: string, moduleId: string): Promise<void> {
  const key = moduleKey(deviceId, moduleId);
  if (await modules.find(key)) return;
  try {
    await modules.createOrUpdate(key, { deviceId, moduleId }, undefined);
  } catch (err) {
    // Made meanwhile by another request: what was wanted.
    if (!(err instanceof ProvisioError && err.status === 409)) throw err;
  }
}

/** An edge device's system modules, made when missing; nothing for other devices. */
export async function ensureEdgeSystemModules(modules: HubRegistry, identity: DeviceIdentity): Promise<void> {
  if (!identity.capabilities.iotEdge) return;
  for (const moduleId of EDGE_SYSTEM_MODULES) await ensureModule(modules, identity.deviceId, moduleId);
}

const invalid = (detail: string) => new ProvisioError("hubArgumentInvalid", { detail });

/** `{modulesContent: {moduleId: {"properties.desired": {...}}}}` → each module's desired properties. Pure. */
export function parseConfigurationContent(body: unknown): Map<string, JsonObject> {
  if (!isObject(body) || !isObject(body.modulesContent)) {
    throw invalid(
      'Send {"modulesContent": {"$edgeAgent": {"properties.desired": {...}}, ...}}: an edge device\'s deployment.',
    );
  }
  const out = new Map<string, JsonObject>();
  for (const [moduleId, content] of Object.entries(body.modulesContent)) {
    const desired = isObject(content) ? content["properties.desired"] : undefined;
    if (!isObject(desired)) throw invalid(`modulesContent['${moduleId}'] must be {"properties.desired": {...}}.`);
    // Checked here, before anything is written, as the module registry would check it.
    if (!isValidHubDeviceId(moduleId))
      throw invalid(`modulesContent names '${moduleId}', which is not a valid module id.`);
    out.set(moduleId, desired as JsonObject);
  }
  return out;
}

/** Applies a deployment to an edge device: each module's desired properties are replaced (tags kept). */
export async function applyConfigurationContent(rt: HubRuntime, deviceId: string, body: unknown): Promise<void> {
  const { identity } = await rt.registry.get(deviceId);
  if (!identity.capabilities.iotEdge) {
    throw invalid(`Device '${deviceId}' is not an IoT Edge device (capabilities.iotEdge): a deployment needs one.`);
  }
  const content = parseConfigurationContent(body);
  for (const [moduleId, desired] of content) {
    await ensureModule(rt.modules, deviceId, moduleId);
    const key = moduleKey(deviceId, moduleId);
    const rec = await rt.modules.get(key);
    await rt.modules.updateTwin(key, { tags: rec.twin.tags, properties: { desired } }, "*", "replace");
  }
}
