// TPM attestation (tpm-attestation.md §1-4, behaviors.md §2.3): individual enrollments only. A
// device without a token shows its endorsement key and is challenged, if that is the enrolled EK;
// with a token it proves that its TPM imported the challenge key. Pure: the caller keeps the
// challenge in the store and makes the blob (tpm/activation-blob.ts).
import { createHash, randomBytes } from "node:crypto";
import type { IndividualEnrollment } from "../domain/enrollment.js";
import { deviceIdOf, type EnrollmentMatch } from "../domain/enrollment-match.js";
import type { TpmChallenge } from "../domain/tpm-challenge.js";
import { type AttestationOutcome, refused } from "./attestation-outcome.js";
import { signatureMatches } from "./sas-token.js";
import { deviceToken } from "./symmetric-key.js";

/** The keys a TPM device sends in its register body (`tpm`), decoded. */
export interface TpmKeys {
  endorsementKey: Buffer;
  storageRootKey: Buffer;
}

export interface TpmInput {
  idScope: string;
  registrationId: string;
  token: string | undefined;
  /** The individual enrollment, with TPM attestation. */
  enrollment: IndividualEnrollment & { attestation: { type: "tpm" } };
  /** From the register body; a poll carries none. */
  presented: TpmKeys | undefined;
  /** The device's pending challenge, if any. */
  challenge: TpmChallenge | undefined;
  now: Date;
}

/** What the caller must do: challenge the device (the EK is the enrolled one), or the outcome. */
export type TpmVerdict = AttestationOutcome | { kind: "issueChallenge"; keys: TpmKeys };

export const endorsementKeyHash = (ek: Buffer): string => createHash("sha256").update(ek).digest("hex");

export function attestTpm(input: TpmInput): TpmVerdict {
  const { enrollment } = input;
  const match: EnrollmentMatch = { kind: "individual", enrollment };
  if (enrollment.provisioningStatus === "disabled") return { kind: "disabled", match };
  const enrolledEk = Buffer.from(enrollment.attestation.tpm.endorsementKey, "base64");
  if (input.token === undefined) {
    const keys = input.presented;
    if (!keys) {
      return refused("a TPM device sends 'tpm' with its endorsementKey and storageRootKey in the register body");
    }
    // Never a challenge for another EK: a blob for it would be a credential for a stranger's TPM.
    if (!keys.endorsementKey.equals(enrolledEk)) {
      return refused(`the endorsement key is not the one enrolled for '${enrollment.registrationId}'`);
    }
    return { kind: "issueChallenge", keys };
  }
  const token = deviceToken({ ...input, nowSeconds: Math.floor(input.now.getTime() / 1000) });
  if ("kind" in token) return token;
  const { challenge } = input;
  if (
    !challenge ||
    Date.parse(challenge.expiresAt) <= input.now.getTime() ||
    challenge.endorsementKeyHash !== endorsementKeyHash(enrolledEk)
  ) {
    return refused("no TPM challenge is pending for this device: register without a token to get one");
  }
  if (!signatureMatches(token, [challenge.key])) {
    return refused("the SAS signature does not verify with the key of the device's TPM challenge");
  }
  // The hub identity's keys, new on every registration: the primary one goes to the TPM (§5).
  return {
    kind: "attested",
    match,
    deviceId: deviceIdOf(match, input.registrationId),
    credential: {
      kind: "keys",
      primaryKey: randomBytes(32).toString("base64"),
      secondaryKey: randomBytes(32).toString("base64"),
    },
  };
}
