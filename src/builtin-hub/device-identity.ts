// Device identity bodies → stored identities (iothub-api.md §4.1-4.2). Pure.
import { randomBytes } from "node:crypto";
import { ProvisioError } from "../domain/errors.js";
import { type AuthenticationType, type DeviceIdentity, NEVER } from "../domain/hub.js";
import { isObject } from "../domain/json.js";
import { scopesFromBody } from "./device-scopes.js";

// IoT Hub device ids: case-sensitive, ≤128 of ASCII alphanumerics and - : . + % _ # * ? ! ( ) , = @ ; $ '
const DEVICE_ID = /^[A-Za-z0-9\-:.+%_#*?!(),=@;$']{1,128}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const THUMBPRINT = /^(?:[0-9A-Fa-f]{40}|[0-9A-Fa-f]{64})$/;
const TYPES: readonly AuthenticationType[] = ["sas", "selfSigned", "certificateAuthority", "none"];

const bad = (detail: string): ProvisioError => new ProvisioError("hubArgumentInvalid", { detail });

export const isValidHubDeviceId = (id: string): boolean => DEVICE_ID.test(id);

/** Device keys the hub makes when a client sends none: 32 random bytes, base64. */
export const newDeviceKey = (): string => randomBytes(32).toString("base64");

/** Identity etags look like IoT Hub's: base64 of a decimal counter ("MA==" is 0). */
export const identityEtag = (n: number): string => Buffer.from(String(n)).toString("base64");
const etagNumber = (etag: string): number => Number(Buffer.from(etag, "base64").toString("utf8")) || 0;

const blank = (v: unknown): boolean => v === undefined || v === null || v === "";

function deviceKey(v: unknown, name: string, kept: string | null | undefined): string {
  if (blank(v)) return kept ?? newDeviceKey();
  if (typeof v !== "string" || !BASE64.test(v)) throw bad(`authentication.symmetricKey.${name} must be base64.`);
  const n = Buffer.from(v, "base64").length;
  if (n < 16 || n > 64) throw bad(`authentication.symmetricKey.${name} must decode to 16-64 bytes, not ${n}.`);
  return v;
}

function thumbprint(v: unknown, name: string): string | null {
  if (blank(v)) return null;
  if (typeof v !== "string" || !THUMBPRINT.test(v)) {
    throw bad(`authentication.x509Thumbprint.${name} must be a SHA-1 (40) or SHA-256 (64) hex thumbprint.`);
  }
  return v.toUpperCase();
}

function authentication(v: unknown, existing: DeviceIdentity | undefined): DeviceIdentity["authentication"] {
  return authenticationOf(v, existing);
}

/** The authentication of a device or module body: keys made when absent, kept when unchanged. */
export function authenticationOf(v: unknown, existing: DeviceIdentity | undefined): DeviceIdentity["authentication"] {
  const auth = isObject(v) ? v : {};
  const thumbs = isObject(auth.x509Thumbprint) ? auth.x509Thumbprint : {};
  const keys = isObject(auth.symmetricKey) ? auth.symmetricKey : {};
  let type = auth.type;
  if (blank(type)) type = !blank(thumbs.primaryThumbprint) ? "selfSigned" : "sas";
  if (!TYPES.includes(type as AuthenticationType)) {
    throw bad(`authentication.type must be one of ${TYPES.join(", ")}.`);
  }
  const none = { primaryKey: null, secondaryKey: null };
  const noThumbs = { primaryThumbprint: null, secondaryThumbprint: null };
  if (type === "sas") {
    const kept = existing?.authentication.type === "sas" ? existing.authentication.symmetricKey : undefined;
    return {
      type,
      symmetricKey: {
        primaryKey: deviceKey(keys.primaryKey, "primaryKey", kept?.primaryKey),
        secondaryKey: deviceKey(keys.secondaryKey, "secondaryKey", kept?.secondaryKey),
      },
      x509Thumbprint: noThumbs,
    };
  }
  if (type === "selfSigned") {
    const primaryThumbprint = thumbprint(thumbs.primaryThumbprint, "primaryThumbprint");
    if (!primaryThumbprint) throw bad("authentication.x509Thumbprint.primaryThumbprint is required for selfSigned.");
    return {
      type,
      symmetricKey: none,
      x509Thumbprint: {
        primaryThumbprint,
        secondaryThumbprint: thumbprint(thumbs.secondaryThumbprint, "secondaryThumbprint"),
      },
    };
  }
  return { type: type as AuthenticationType, symmetricKey: none, x509Thumbprint: noThumbs };
}

/**
 * The identity a PUT /devices/{id} stores. Hub-owned fields the SDK echoes back (etag,
 * generationId, connection state, times) are ignored (iothub-api.md §4.2).
 */
export function identityFromBody(
  body: unknown,
  pathId: string,
  existing: DeviceIdentity | undefined,
  now: string,
): DeviceIdentity {
  if (!isObject(body)) throw bad("The body must be a device identity JSON object.");
  if (body.deviceId !== pathId) {
    throw bad(`The body's deviceId '${String(body.deviceId)}' must equal the id in the path, '${pathId}'.`);
  }
  if (!isValidHubDeviceId(pathId)) {
    throw bad(
      `'${pathId}' is not a valid device id: 1-128 characters of A-Z a-z 0-9 - : . + % _ # * ? ! ( ) , = @ ; $ '.`,
    );
  }
  const status = blank(body.status) ? "enabled" : body.status;
  if (status !== "enabled" && status !== "disabled") throw bad("'status' must be enabled or disabled.");
  const reason = body.statusReason;
  if (!blank(reason) && (typeof reason !== "string" || reason.length > 128)) {
    throw bad("'statusReason' must be a string of at most 128 characters.");
  }
  const caps = body.capabilities;
  if (!blank(caps) && (!isObject(caps) || (caps.iotEdge !== undefined && typeof caps.iotEdge !== "boolean"))) {
    throw bad("'capabilities.iotEdge' must be true or false.");
  }
  const generationId =
    existing?.generationId ?? `${Date.now()}${String(Math.floor(Math.random() * 1e5)).padStart(5, "0")}`;
  const iotEdge = isObject(caps) && caps.iotEdge === true;
  return {
    deviceId: pathId,
    generationId,
    etag: identityEtag(existing ? etagNumber(existing.etag) + 1 : 0),
    status,
    statusReason: typeof reason === "string" ? reason : null,
    statusUpdatedTime: existing && existing.status === status ? existing.statusUpdatedTime : existing ? now : NEVER,
    connectionState: existing?.connectionState ?? "Disconnected",
    connectionStateUpdatedTime: existing?.connectionStateUpdatedTime ?? NEVER,
    lastActivityTime: existing?.lastActivityTime ?? NEVER,
    cloudToDeviceMessageCount: 0,
    authentication: authentication(body.authentication, existing),
    capabilities: { iotEdge },
    ...scopesFromBody(body, { deviceId: pathId, generationId, iotEdge }, existing),
  };
}

/** A module's registry key: `{deviceId}/{moduleId}` (neither id may hold '/'). */
export const moduleKey = (deviceId: string, moduleId: string): string => `${deviceId}/${moduleId}`;

/**
 * The identity a PUT /devices/{deviceId}/modules/{moduleId} stores, under the key
 * `{deviceId}/{moduleId}` (iothub-api.md §4; IoT Hub's module identities).
 */
export function moduleIdentityFromBody(
  body: unknown,
  key: string,
  existing: DeviceIdentity | undefined,
  /** Modules have no status to time; the parameter keeps the registry's one parser signature. */
  _now: string,
): DeviceIdentity {
  const [deviceId = "", moduleId = ""] = key.split("/");
  if (!isObject(body)) throw bad("The body must be a module identity JSON object.");
  if (body.moduleId !== moduleId) {
    throw bad(`The body's moduleId '${String(body.moduleId)}' must equal the id in the path, '${moduleId}'.`);
  }
  if (body.deviceId !== undefined && body.deviceId !== deviceId) {
    throw bad(`The body's deviceId '${String(body.deviceId)}' must equal the device in the path, '${deviceId}'.`);
  }
  if (!isValidHubDeviceId(moduleId)) {
    throw bad(
      `'${moduleId}' is not a valid module id: 1-128 characters of A-Z a-z 0-9 - : . + % _ # * ? ! ( ) , = @ ; $ '.`,
    );
  }
  const managedBy = body.managedBy;
  if (!blank(managedBy) && typeof managedBy !== "string") throw bad("'managedBy' must be a string.");
  return {
    deviceId: key,
    generationId: existing?.generationId ?? `${Date.now()}${String(Math.floor(Math.random() * 1e5)).padStart(5, "0")}`,
    etag: identityEtag(existing ? etagNumber(existing.etag) + 1 : 0),
    status: "enabled",
    statusReason: null,
    statusUpdatedTime: existing?.statusUpdatedTime ?? NEVER,
    connectionState: existing?.connectionState ?? "Disconnected",
    connectionStateUpdatedTime: existing?.connectionStateUpdatedTime ?? NEVER,
    lastActivityTime: existing?.lastActivityTime ?? NEVER,
    cloudToDeviceMessageCount: 0,
    authentication: authenticationOf(body.authentication, existing),
    capabilities: { iotEdge: false },
    managedBy: typeof managedBy === "string" ? managedBy : null,
  };
}
