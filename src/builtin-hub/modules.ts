// Module identities and twins of a built-in hub (IoT Hub's modules, what IoT Edge runs on): stored
// as identities keyed `{deviceId}/{moduleId}` under the hub name + "/modules", shown as IoT Hub
// shows them.
import type { DeviceIdentity, HubDeviceRecord } from "../domain/hub.js";
import type { HubRuntime } from "./builtin-hubs.js";
import { twinJson } from "./hub-wire.js";

const split = (key: string): { deviceId: string; moduleId: string } => {
  const i = key.indexOf("/");
  return { deviceId: key.slice(0, i), moduleId: key.slice(i + 1) };
};

/** A module identity as IoT Hub returns it. */
export function moduleJson(identity: DeviceIdentity): Record<string, unknown> {
  const { deviceId, moduleId } = split(identity.deviceId);
  return {
    moduleId,
    deviceId,
    managedBy: identity.managedBy ?? null,
    generationId: identity.generationId,
    etag: identity.etag,
    connectionState: identity.connectionState,
    connectionStateUpdatedTime: identity.connectionStateUpdatedTime,
    lastActivityTime: identity.lastActivityTime,
    cloudToDeviceMessageCount: identity.cloudToDeviceMessageCount,
    authentication: identity.authentication,
  };
}

/** A module twin: the device twin's shape with the module's ids. */
export function moduleTwinJson(rec: HubDeviceRecord): Record<string, unknown> {
  const { deviceId, moduleId } = split(rec.identity.deviceId);
  const { deviceScope: _s, parentScopes: _p, capabilities: _c, ...twin } = twinJson(rec);
  return { ...twin, deviceId, moduleId };
}

/** Every module of a device, in id order. */
export async function modulesOf(rt: Pick<HubRuntime, "modules">, deviceId: string): Promise<HubDeviceRecord[]> {
  const prefix = `${deviceId}/`;
  const out: HubDeviceRecord[] = [];
  let after = prefix;
  for (;;) {
    const page = await rt.modules.list({ after, limit: 100 });
    for (const rec of page.items) {
      if (!rec.identity.deviceId.startsWith(prefix)) return out;
      out.push(rec);
    }
    if (page.next === undefined) return out;
    after = page.next;
  }
}
