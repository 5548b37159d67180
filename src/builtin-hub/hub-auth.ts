// Built-in hub authentication (iothub-api.md §3): service tokens signed with a hub policy,
// device tokens signed with the device's key, each with its scope and expiry checked; devices
// with a self-signed identity by the thumbprint of their TLS client certificate (§10.3).
import {
  expiredReason,
  isExpired,
  parseSasToken,
  type SasToken,
  signatureMatches,
  tokenResource,
} from "../attestation/sas-token.js";
import { derThumbprints } from "../attestation/x509-info.js";
import { ProvisioError } from "../domain/errors.js";
import type { BuiltinHub, DeviceIdentity, HubPolicy, HubRight } from "../domain/hub.js";

const unauthorized = (detail: string): ProvisioError => new ProvisioError("hubUnauthorized", { detail });

/** `resource` is `scope` or a path under it, per segment; a `:port` after the host is tolerated. */
export function covers(resource: string, scope: string): boolean {
  const r = resource.replace(/^([^/:]+):\d+/, "$1");
  return r === scope || scope.startsWith(`${r}/`) || r.startsWith(`${scope}/`);
}

function parse(text: string | undefined, now: number): SasToken {
  if (!text) throw unauthorized("no SharedAccessSignature was sent");
  const token = parseSasToken(text);
  if (!token) throw unauthorized("the credential is not a SharedAccessSignature with sr, sig and se");
  if (isExpired(token, now)) throw unauthorized(expiredReason(token, now));
  return token;
}

/** A service request: a token of a hub policy holding `right`. */
export function authenticateService(
  authorization: string | undefined,
  hub: BuiltinHub,
  right: HubRight,
  now = Math.floor(Date.now() / 1000),
): HubPolicy {
  const token = parse(authorization, now);
  if (!covers(tokenResource(token), hub.hostName.toLowerCase())) {
    throw unauthorized(`the token is for '${tokenResource(token)}', not for hub '${hub.hostName}'`);
  }
  const policy = token.skn ? hub.policies.find((p) => p.keyName.toLowerCase() === token.skn?.toLowerCase()) : undefined;
  // Event Hubs clients (sr `sb://…`, the hub's Event Hubs-compatible endpoint) sign with the key's text.
  const eventHubs = /^sb(:|%3a)/i.test(token.sr);
  if (!policy || !signatureMatches(token, [policy.primaryKey, policy.secondaryKey], "all", eventHubs)) {
    throw unauthorized(`the signature does not verify with the keys of a policy named '${token.skn ?? ""}'`);
  }
  if (!policy.rights.includes(right)) throw unauthorized(`policy '${policy.keyName}' lacks the ${right} right`);
  return policy;
}

/**
 * A device connection or request: a token for `{host}/devices/{deviceId}` (iothub-api.md §6.2).
 * `gatewayHost`: the name the device dialed instead of the hub's (a `GatewayHostName`); a token
 * for it is taken as for the hub, as IoT Edge takes tokens for its own host name.
 */
export function authenticateDevice(
  text: string | undefined,
  hub: BuiltinHub,
  identity: DeviceIdentity,
  now = Math.floor(Date.now() / 1000),
  gatewayHost?: string,
): void {
  const token = parse(text, now);
  // A module's key is `{deviceId}/{moduleId}`; its tokens are for `{host}/devices/{d}/modules/{m}`.
  const path = `/devices/${identity.deviceId.replace("/", "/modules/")}`;
  const scope = `${hub.hostName}${path}`.toLowerCase();
  const viaGateway = gatewayHost !== undefined && covers(tokenResource(token), `${gatewayHost}${path}`.toLowerCase());
  if (!covers(tokenResource(token), scope) && !viaGateway) {
    throw unauthorized(`the token is for '${tokenResource(token)}', not for device '${identity.deviceId}'`);
  }
  let keys: string[];
  if (token.skn) {
    const policy = hub.policies.find((p) => p.keyName.toLowerCase() === token.skn?.toLowerCase());
    keys = policy?.rights.includes("DeviceConnect") ? [policy.primaryKey, policy.secondaryKey] : [];
  } else {
    const k = identity.authentication.symmetricKey;
    keys = [k.primaryKey, k.secondaryKey].filter((x): x is string => x !== null);
  }
  if (keys.length === 0 || !signatureMatches(token, keys)) {
    throw unauthorized(`the signature does not verify with the keys of device '${identity.deviceId}'`);
  }
}

/** Does the leaf certificate a device presented carry a thumbprint (SHA-1 or SHA-256) its self-signed identity lists? */
export function certificateAuthenticates(identity: DeviceIdentity, leaf: Buffer | undefined): boolean {
  if (identity.authentication.type !== "selfSigned" || !leaf) return false;
  const { primaryThumbprint, secondaryThumbprint } = identity.authentication.x509Thumbprint;
  const listed = [primaryThumbprint, secondaryThumbprint].filter((t): t is string => t !== null);
  if (listed.length === 0) return false;
  const { sha1, sha256 } = derThumbprints(leaf);
  const presented = [sha1, sha256];
  return listed.some((t) => presented.includes(t.replaceAll(":", "").toUpperCase()));
}

/** A device request over HTTPS: its SAS token, or, when it sends none, its TLS client certificate. */
export function authenticateDeviceRequest(
  authorization: string | undefined,
  leaf: Buffer | undefined,
  hub: BuiltinHub,
  identity: DeviceIdentity,
): void {
  if (authorization || !leaf) {
    authenticateDevice(authorization, hub, identity);
  } else if (!certificateAuthenticates(identity, leaf)) {
    throw unauthorized(
      identity.authentication.type === "selfSigned"
        ? `the client certificate's thumbprint is not one device '${identity.deviceId}' lists`
        : `device '${identity.deviceId}' authenticates with ${identity.authentication.type}, not a client certificate`,
    );
  }
}
