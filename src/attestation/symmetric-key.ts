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

/** The device keys derived from a group's keys for `registrationId`, one per group key, in order. */
export const deriveDeviceKeys = (groupKeys: readonly string[], registrationId: string): string[] =>
  groupKeys.map((key) => deriveDeviceKey(key, registrationId));
