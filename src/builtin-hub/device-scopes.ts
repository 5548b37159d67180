// IoT Edge parent/child relations of the built-in hub's identities (iothub-api.md §4.1), as
// IoT Hub keeps them and `az iot hub device-identity parent|children` reads them:
// - an edge device's `deviceScope` is its own scope, `ms-azure-iot-edge://{deviceId}-{generationId}`,
//   made by the hub; its parent (another edge device) is the one entry of `parentScopes`, set by clients;
// - a leaf device's `deviceScope` is its parent's scope (or null), set by clients, and
//   `parentScopes` mirrors it.
// Pure: whether a named parent exists is the registry's question (registry.ts).
import { ProvisioError } from "../domain/errors.js";
import type { DeviceIdentity } from "../domain/hub.js";

const PREFIX = "ms-azure-iot-edge://";

export const edgeScope = (deviceId: string, generationId: string): string => `${PREFIX}${deviceId}-${generationId}`;

/** The device an edge scope names (the part between the prefix and the last '-'), if it is one. */
export function deviceOfScope(scope: string): string | undefined {
  if (!scope.startsWith(PREFIX)) return undefined;
  const dash = scope.lastIndexOf("-");
  return dash > PREFIX.length ? scope.slice(PREFIX.length, dash) : undefined;
}

export interface Scopes {
  deviceScope: string | null;
  parentScopes: string[];
}

/** The scopes of a stored identity, filled in for records kept before relations existed. */
export function scopesOf(identity: DeviceIdentity): Scopes {
  if (identity.capabilities.iotEdge) {
    return {
      deviceScope: identity.deviceScope ?? edgeScope(identity.deviceId, identity.generationId),
      parentScopes: identity.parentScopes ?? [],
    };
  }
  const parent = identity.deviceScope ?? null;
  return { deviceScope: parent, parentScopes: parent ? [parent] : [] };
}

/** The scope of the device's parent, whichever kind it is. */
export const parentScopeOf = (s: Scopes, iotEdge: boolean): string | null =>
  (iotEdge ? s.parentScopes[0] : s.deviceScope) ?? null;

const bad = (detail: string): ProvisioError => new ProvisioError("hubArgumentInvalid", { detail });

function scopeText(v: unknown, name: string): string | null {
  if (v === null || v === "") return null;
  if (typeof v !== "string") throw bad(`'${name}' must be a device scope string or null.`);
  return v;
}

/**
 * The scopes a PUT /devices/{id} stores. What the body leaves out is kept (a client that
 * refreshes an identity, as DPS does, must not cut it from its parent); what the hub owns — an
 * edge device's own scope, a leaf's `parentScopes` — is never taken from the body.
 */
export function scopesFromBody(
  body: Record<string, unknown>,
  identity: { deviceId: string; generationId: string; iotEdge: boolean },
  existing: DeviceIdentity | undefined,
): Scopes {
  const before = existing ? scopesOf(existing) : undefined;
  const parentBefore = before && existing ? parentScopeOf(before, existing.capabilities.iotEdge) : null;
  if (identity.iotEdge) {
    const own =
      existing?.capabilities.iotEdge && before?.deviceScope
        ? before.deviceScope
        : edgeScope(identity.deviceId, identity.generationId);
    let parent = parentBefore;
    if (body.parentScopes !== undefined) {
      const list = body.parentScopes;
      if (list !== null && (!Array.isArray(list) || list.length > 1)) {
        throw bad("'parentScopes' of an IoT Edge device must be an array of at most one parent scope.");
      }
      parent = list === null || list.length === 0 ? null : scopeText(list[0], "parentScopes[0]");
    }
    if (parent === own) throw bad(`IoT Edge device '${identity.deviceId}' cannot be its own parent.`);
    return { deviceScope: own, parentScopes: parent ? [parent] : [] };
  }
  let parent = parentBefore;
  if (body.deviceScope !== undefined) {
    parent = scopeText(body.deviceScope, "deviceScope");
    // An edge device turned leaf echoes its former own scope: that names no parent.
    if (parent !== null && existing?.capabilities.iotEdge && parent === before?.deviceScope) parent = null;
  }
  return { deviceScope: parent, parentScopes: parent ? [parent] : [] };
}
