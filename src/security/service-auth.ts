// Service-side authentication: a SAS token signed with a shared access policy of the instance,
// and the policy's rights (service-api.md §9).
import type { IncomingHttpHeaders } from "node:http";
import { isExpired, parseSasToken, signatureMatches, tokenResource } from "../attestation/sas-token.js";
import { ProvisioError } from "../domain/errors.js";
import type { IdScope } from "../domain/ids.js";
import { type AccessPolicy, grants, type Instance, type Right } from "../domain/instance.js";

export type PolicyLookup = (idScope: IdScope, keyName: string) => Promise<AccessPolicy | undefined>;

/** Is `resource` the host itself or a path under it, matched per segment? */
const covers = (resource: string, host: string): boolean => resource === host || resource.startsWith(`${host}/`);

/**
 * Check the Authorization header against the instance's policies; resolve to the policy.
 * `requestHost` is the Host header: the SDKs sign with the HostName they connect to.
 */
export async function authenticate(
  headers: IncomingHttpHeaders,
  instance: Instance,
  requestHost: string,
  lookup: PolicyLookup,
  nowSeconds = Math.floor(Date.now() / 1000),
): Promise<AccessPolicy> {
  const header = headers.authorization;
  if (!header) throw new ProvisioError("missingToken");
  if (/^bearer\s/i.test(header)) {
    throw new ProvisioError("unauthorized", {
      detail: "bearer tokens are not accepted; sign a SharedAccessSignature with a shared access policy key",
    });
  }
  const token = parseSasToken(header);
  if (!token) {
    throw new ProvisioError("unauthorized", {
      detail: "the Authorization header is not a SharedAccessSignature with sr, sig and se fields",
    });
  }
  if (!token.skn) {
    throw new ProvisioError("unauthorized", { detail: "the SAS token names no shared access policy (skn)" });
  }
  const resource = tokenResource(token);
  if (!covers(resource, requestHost) && !covers(resource, instance.hostName.toLowerCase())) {
    throw new ProvisioError("unauthorized", {
      detail: `the SAS token is for '${resource}', not for this service ('${instance.hostName}')`,
    });
  }
  const policy = await lookup(instance.idScope, token.skn);
  if (!policy || !signatureMatches(token, [policy.primaryKey, policy.secondaryKey])) {
    // One message for both: do not reveal which policy names exist.
    throw new ProvisioError("unauthorized", {
      detail: `the SAS signature does not verify with the keys of a policy named '${token.skn}'`,
    });
  }
  if (isExpired(token, nowSeconds)) {
    throw new ProvisioError("tokenExpired", { expiry: new Date(token.se * 1000).toISOString() });
  }
  return policy;
}

export function requireRight(policy: AccessPolicy, right: Right): void {
  if (!grants(policy.rights, right)) throw new ProvisioError("missingRight", { policy: policy.keyName, right });
}
