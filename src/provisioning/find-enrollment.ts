// Steps 1-2 of a registration: find the enrollment (individual first, then groups) and attest
// the device against it (behaviors.md §3, device-api.md §4).
import { parseSasToken, type SasToken, signatureMatches } from "../attestation/sas-token.js";
import { checkDeviceToken, deriveDeviceKeys, signedByKeys } from "../attestation/symmetric-key.js";
import { attestX509 } from "../attestation/x509-attestation.js";
import { type EnrollmentGroup, type IndividualEnrollment, symmetricKeysOf } from "../domain/enrollment.js";
import { ProvisioError } from "../domain/errors.js";
import type { IdScope } from "../domain/ids.js";
import type { CaCertificate } from "../domain/instance.js";

/** What a transport hands over as proof of identity. */
export interface DeviceCredentials {
  /** The SharedAccessSignature text (HTTP Authorization, MQTT password, AMQP SASL password). */
  sasToken?: string;
  /** DER certificates from the TLS handshake, leaf first. */
  certificateChain: readonly Buffer[];
}

export type EnrollmentMatch =
  | { kind: "individual"; enrollment: IndividualEnrollment; disabled: boolean }
  | { kind: "group"; group: EnrollmentGroup; disabled: boolean };

/** The hub identity credentials a matched, attested device gets (behaviors.md §5). */
export interface AttestedDevice {
  match: EnrollmentMatch;
  deviceId: string;
  /** Symmetric-key devices: the keys the device holds. */
  keys?: { primaryKey: string; secondaryKey: string };
  /** X.509 devices: the leaf's SHA-1 thumbprint, for a self-signed hub identity (behaviors.md §2.2). */
  thumbprint?: string;
}

const unauthorized = (detail: string): ProvisioError => new ProvisioError("unauthorized", { detail });

function deviceToken(credentials: DeviceCredentials, idScope: IdScope, registrationId: string): SasToken {
  if (!credentials.sasToken) {
    throw unauthorized("the device sent neither a SharedAccessSignature nor a client certificate");
  }
  const token = parseSasToken(credentials.sasToken);
  if (!token) throw unauthorized("the credential is not a SharedAccessSignature with sr, sig and se");
  const check = checkDeviceToken(token, idScope, registrationId, Math.floor(Date.now() / 1000));
  if (check === "wrongResource") {
    throw unauthorized(`the SAS token must be for '${idScope}/registrations/${registrationId}'`);
  }
  if (check === "expired") throw unauthorized(`the SAS token expired at ${new Date(token.se * 1000).toISOString()}`);
  return token;
}

/**
 * Individual enrollment first (its status decides, whatever mechanism the device uses), then the
 * symmetric-key group whose derived key signs the token. No match → 401.
 */
export function findAndAttest(
  idScope: IdScope,
  registrationId: string,
  credentials: DeviceCredentials,
  individual: IndividualEnrollment | undefined,
  groups: readonly EnrollmentGroup[],
  caCertificates: readonly CaCertificate[] = [],
  onRefused?: (detail: string) => void,
): AttestedDevice | { disabled: EnrollmentMatch } {
  // No SAS token and a client certificate: X.509 attestation (device-api.md §4.3).
  if (!credentials.sasToken && credentials.certificateChain.length > 0) {
    const outcome = attestX509({
      registrationId,
      chain: credentials.certificateChain,
      individual,
      groups,
      caCertificates,
      now: new Date(),
    });
    if (outcome.ok) {
      const match: EnrollmentMatch = { ...outcome.match, disabled: false } as EnrollmentMatch;
      const deviceId = match.kind === "individual" ? (match.enrollment.deviceId ?? registrationId) : registrationId;
      return { match, deviceId, thumbprint: outcome.leafSha1 };
    }
    if ("disabled" in outcome) return { disabled: { ...outcome.disabled, disabled: true } as EnrollmentMatch };
    onRefused?.(outcome.refused.detail);
    throw unauthorized(outcome.refused.summary);
  }
  if (individual) {
    const match: EnrollmentMatch = { kind: "individual", enrollment: individual, disabled: false };
    if (individual.provisioningStatus === "disabled") return { disabled: { ...match, disabled: true } };
    const keys = symmetricKeysOf(individual.attestation);
    if (!keys) {
      throw unauthorized(`enrollment '${individual.registrationId}' uses ${individual.attestation.type} attestation`);
    }
    const token = deviceToken(credentials, idScope, registrationId);
    if (!signedByKeys(token, [keys.primaryKey, keys.secondaryKey])) {
      throw unauthorized("the SAS signature does not verify with the enrollment's primary or secondary key");
    }
    return { match, deviceId: individual.deviceId ?? registrationId, keys };
  }

  const token = deviceToken(credentials, idScope, registrationId);
  return signingGroup(token, groups, registrationId);
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
  groups: readonly EnrollmentGroup[],
  registrationId: string,
): AttestedDevice | { disabled: EnrollmentMatch } {
  const keysOf = (group: EnrollmentGroup): [string, string] | undefined => {
    const keys = group.attestation.type === "symmetricKey" ? group.attestation.symmetricKey : undefined;
    return keys && [keys.primaryKey, keys.secondaryKey];
  };
  const asSent: (string[] | undefined)[] = [];
  for (const [i, group] of groups.entries()) {
    const keys = keysOf(group);
    const deviceKeys = keys && deriveDeviceKeys(keys, registrationId);
    asSent[i] = deviceKeys;
    if (deviceKeys && signatureMatches(token, deviceKeys, "asSent")) return attested(group, registrationId, deviceKeys);
  }
  const lower = registrationId.toLowerCase();
  for (const [i, group] of groups.entries()) {
    const keys = keysOf(group);
    const deviceKeys = asSent[i];
    if (!keys || !deviceKeys) continue;
    if (signatureMatches(token, deviceKeys, "others")) return attested(group, registrationId, deviceKeys);
    if (lower === registrationId) continue;
    // behaviors.md §2.1 (AMBIGUOUS): a device may have derived its key from the lower-cased id.
    const lowerKeys = deriveDeviceKeys(keys, lower);
    if (signatureMatches(token, lowerKeys)) return attested(group, registrationId, lowerKeys);
  }
  throw unauthorized(
    `no enrollment matches '${registrationId}': no individual enrollment, and no group's derived key signs the token`,
  );
}

function attested(
  group: EnrollmentGroup,
  registrationId: string,
  deviceKeys: readonly string[],
): AttestedDevice | { disabled: EnrollmentMatch } {
  const match: EnrollmentMatch = { kind: "group", group, disabled: group.provisioningStatus === "disabled" };
  if (match.disabled) return { disabled: match };
  return {
    match,
    deviceId: registrationId,
    // The hub gets the keys the device holds: derived from the id spelling it signed with.
    keys: { primaryKey: deviceKeys[0] ?? "", secondaryKey: deviceKeys[1] ?? "" },
  };
}
