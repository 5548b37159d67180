// Attestation, whatever the mechanism (behaviors.md §2-3): the evidence decides which mechanism
// answers, the candidates (the individual enrollment with the device's id, the scope's groups)
// were found by the caller. Pure.
import type { IndividualEnrollment } from "../domain/enrollment.js";
import type { AttestationOutcome, DeviceEvidence } from "./attestation-outcome.js";
import { attestSymmetricKey, type SymmetricKeyGroup } from "./symmetric-key.js";
import { attestX509, type X509Trust } from "./x509-attestation.js";

export interface AttestationCandidates {
  /** The individual enrollment with the device's registration id: it alone decides (§3 step 2). */
  individual: IndividualEnrollment | undefined;
  /** The scope's symmetric-key groups, most likely first. */
  symmetricKeyGroups: readonly SymmetricKeyGroup[];
  /** The scope's X.509 groups and CA store. */
  x509: X509Trust;
}

export function attest(
  idScope: string,
  registrationId: string,
  evidence: DeviceEvidence,
  candidates: AttestationCandidates,
  now: Date,
): AttestationOutcome {
  // A client certificate and no SAS token: X.509 (device-api.md §4.3).
  if (evidence.kind === "x509") {
    return attestX509({
      registrationId,
      chain: evidence.chain,
      individual: candidates.individual,
      trust: candidates.x509,
      now,
    });
  }
  return attestSymmetricKey({
    idScope,
    registrationId,
    token: evidence.kind === "sas" ? evidence.token : undefined,
    individual: candidates.individual,
    groups: candidates.symmetricKeyGroups,
    nowSeconds: Math.floor(now.getTime() / 1000),
  });
}
