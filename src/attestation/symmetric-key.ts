// Symmetric-key device attestation (device-api.md §4.1-4.2, behaviors.md §2.1). Pure.
import { createHmac } from "node:crypto";
import { isExpired, type SasToken, signatureMatches, tokenResource } from "./sas-token.js";

/** A group device's key: base64(HMAC-SHA256(base64decode(groupKey), registrationId)). */
export const deriveDeviceKey = (groupKeyBase64: string, registrationId: string): string =>
  createHmac("sha256", Buffer.from(groupKeyBase64, "base64")).update(registrationId, "utf8").digest("base64");

/** The resource a device token must name: `{idScope}/registrations/{registrationId}`, compared lower-cased. */
export const deviceResource = (idScope: string, registrationId: string): string =>
  `${idScope}/registrations/${registrationId}`.toLowerCase();

export type TokenCheck = "ok" | "wrongResource" | "expired";

/** Scope and expiry of a device token; the signature is checked separately against candidate keys. */
export function checkDeviceToken(
  token: SasToken,
  idScope: string,
  registrationId: string,
  nowSeconds: number,
): TokenCheck {
  if (tokenResource(token) !== deviceResource(idScope, registrationId)) return "wrongResource";
  if (isExpired(token, nowSeconds)) return "expired";
  return "ok";
}

/** Does an individual enrollment's primary or secondary key sign the token? */
export const signedByKeys = (token: SasToken, keys: readonly string[]): boolean => signatureMatches(token, keys);

/**
 * Does a key derived from one of the group's keys sign the token? Resolves to the id spelling the
 * device derived with (the id as sent, or else the lower-cased id; behaviors.md §2.1, AMBIGUOUS)
 * and the device keys derived with it, one per group key, in order. `asSent`: only the id and the
 * token's `sr` as sent, which is how the SDKs sign; without it, every spelling of both.
 */
export function groupSigningId(
  token: SasToken,
  groupKeys: readonly string[],
  registrationId: string,
  asSent = false,
): { id: string; deviceKeys: string[] } | undefined {
  const lower = registrationId.toLowerCase();
  for (const id of lower === registrationId || asSent ? [registrationId] : [registrationId, lower]) {
    const deviceKeys = groupKeys.map((key) => deriveDeviceKey(key, id));
    if (signatureMatches(token, deviceKeys, asSent)) return { id, deviceKeys };
  }
  return undefined;
}
