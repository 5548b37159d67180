// A TPM device's pending challenge (tpm-attestation.md §3-4): the key DPS sent it, wrapped for its
// TPM, which signs the device's SAS tokens until its registration is done. Kept in the store, so a
// challenge issued by one node is answered on any node; it expires.

export interface TpmChallenge {
  /** The challenge key, base64: the device's SAS tokens are HMACs with it. A secret at rest. */
  key: string;
  /** SHA-256 (hex) of the endorsement key the challenge was made for: a changed enrollment voids it. */
  endorsementKeyHash: string;
  /** ISO-8601: after this the device must ask for a new challenge. */
  expiresAt: string;
}
