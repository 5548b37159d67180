// Symmetric-key device attestation (device-api.md §4.1-4.2, behaviors.md §2.1, §3). Pure.
import { createHmac } from "node:crypto";
import { type EnrollmentGroup, type IndividualEnrollment, symmetricKeysOf } from "../domain/enrollment.js";
import { deviceIdOf, type EnrollmentMatch } from "../domain/enrollment-match.js";
import { type AttestationOutcome, refused } from "./attestation-outcome.js";
import {
  expiredReason,
  isExpired,
  parseSasToken,
  type SasToken,
  signatureMatches,
  tokenResource,
} from "./sas-token.js";

/** A group device's key: base64(HMAC-SHA256(base64decode(groupKey), registrationId)). */
export const deriveDeviceKey = (groupKeyBase64: string, registrationId: string): string =>
  createHmac("sha256", Buffer.from(groupKeyBase64, "base64")).update(registrationId, "utf8").digest("base64");

/** The resource a device token must name: `{idScope}/registrations/{registrationId}`, compared lower-cased. */
export const deviceResource = (idScope: string, registrationId: string): string =>
  `${idScope}/registrations/${registrationId}`.toLowerCase();

/** The device keys derived from a group's keys for `registrationId`, one per group key, in order. */
export const deriveDeviceKeys = (groupKeys: readonly string[], registrationId: string): string[] =>
  groupKeys.map((key) => deriveDeviceKey(key, registrationId));

/** A symmetric-key group with its two keys, as a scope's compiled view holds it. */
export interface SymmetricKeyGroup {
  readonly enrollmentGroupId: string;
  readonly group: EnrollmentGroup;
  readonly keys: readonly [string, string];
}

/** The symmetric-key groups among `groups`, with their keys. */
export function symmetricKeyGroups(groups: readonly EnrollmentGroup[]): SymmetricKeyGroup[] {
  const out: SymmetricKeyGroup[] = [];
  for (const group of groups) {
    const keys = symmetricKeysOf(group.attestation);
    if (keys)
      out.push({ enrollmentGroupId: group.enrollmentGroupId, group, keys: [keys.primaryKey, keys.secondaryKey] });
  }
  return out;
}

export interface SymmetricKeyInput {
  idScope: string;
  registrationId: string;
  /** The SharedAccessSignature text, if the device sent one. */
  token: string | undefined;
  /** The individual enrollment with this registration id: it alone decides (behaviors.md §3 step 2). */
  individual: IndividualEnrollment | undefined;
  /** The scope's symmetric-key groups, most likely first. */
  groups: readonly SymmetricKeyGroup[];
  nowSeconds: number;
}

export function attestSymmetricKey(input: SymmetricKeyInput): AttestationOutcome {
  const { individual } = input;
  if (individual) {
    const match: EnrollmentMatch = { kind: "individual", enrollment: individual };
    if (individual.provisioningStatus === "disabled") return { kind: "disabled", match };
    const keys = symmetricKeysOf(individual.attestation);
    if (!keys)
      return refused(`enrollment '${individual.registrationId}' uses ${individual.attestation.type} attestation`);
    const token = deviceToken(input);
    if ("kind" in token) return token;
    if (!signatureMatches(token, [keys.primaryKey, keys.secondaryKey])) {
      return refused("the SAS signature does not verify with the enrollment's primary or secondary key");
    }
    return {
      kind: "attested",
      match,
      deviceId: deviceIdOf(match, input.registrationId),
      credential: { kind: "keys", ...keys },
    };
  }
  const token = deviceToken(input);
  if ("kind" in token) return token;
  return signingGroup(token, input.groups, input.registrationId);
}

/** The token, or why it cannot attest anyone: absent, malformed, for another device, expired. */
export function deviceToken(
  input: Pick<SymmetricKeyInput, "idScope" | "registrationId" | "token" | "nowSeconds">,
): SasToken | AttestationOutcome {
  if (input.token === undefined) {
    return refused("the device sent neither a SharedAccessSignature nor a client certificate");
  }
  const token = parseSasToken(input.token);
  if (!token) return refused("the credential is not a SharedAccessSignature with sr, sig and se");
  if (tokenResource(token) !== deviceResource(input.idScope, input.registrationId)) {
    return refused(`the SAS token must be for '${input.idScope}/registrations/${input.registrationId}'`);
  }
  if (isExpired(token, input.nowSeconds)) {
    return refused(expiredReason(token, input.nowSeconds));
  }
  return token;
}

/**
 * The symmetric-key group whose derived key signs the token (behaviors.md §2.1). Every group is
 * tried first with the id and `sr` as sent, which is how the SDKs sign (4 HMACs a group), and only
 * then with the other spellings of `sr` (reusing those keys) and the lower-cased id: a scope of
 * 100 groups (behaviors.md §9) cost ~3.7 ms for a device of the last group when each group was
 * tried every way in turn. Only two groups with the same key could both sign a token, so the
 * order of the passes changes no outcome.
 */
function signingGroup(
  token: SasToken,
  groups: readonly SymmetricKeyGroup[],
  registrationId: string,
): AttestationOutcome {
  const asSent: string[][] = [];
  for (const [i, { group, keys }] of groups.entries()) {
    const deviceKeys = deriveDeviceKeys(keys, registrationId);
    asSent[i] = deviceKeys;
    if (signatureMatches(token, deviceKeys, "asSent")) return admitted(group, registrationId, deviceKeys);
  }
  const lower = registrationId.toLowerCase();
  for (const [i, { group, keys }] of groups.entries()) {
    const deviceKeys = asSent[i] as string[];
    if (signatureMatches(token, deviceKeys, "others")) return admitted(group, registrationId, deviceKeys);
    if (lower === registrationId) continue;
    // behaviors.md §2.1 (AMBIGUOUS): a device may have derived its key from the lower-cased id.
    const lowerKeys = deriveDeviceKeys(keys, lower);
    if (signatureMatches(token, lowerKeys)) return admitted(group, registrationId, lowerKeys);
  }
  return refused(
    `no enrollment matches '${registrationId}': no individual enrollment, and no group's derived key signs the token`,
  );
}

function admitted(group: EnrollmentGroup, registrationId: string, deviceKeys: readonly string[]): AttestationOutcome {
  const match: EnrollmentMatch = { kind: "group", group };
  if (group.provisioningStatus === "disabled") return { kind: "disabled", match };
  return {
    kind: "attested",
    match,
    deviceId: registrationId,
    // The hub gets the keys the device holds: derived from the id spelling it signed with.
    credential: { kind: "keys", primaryKey: deviceKeys[0] ?? "", secondaryKey: deviceKeys[1] ?? "" },
  };
}
