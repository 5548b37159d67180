// What every attestation mechanism answers (behaviors.md §2-3). Pure types.
import type { EnrollmentMatch } from "../domain/enrollment-match.js";

/** The credential the device's hub identity gets (behaviors.md §5, iothub-api.md §8.1). */
export type HubCredential =
  /** Symmetric keys: the enrollment's, or those derived from the group's for this registration id. */
  | { kind: "keys"; primaryKey: string; secondaryKey: string }
  /** X.509: the leaf's thumbprints (the hub identity is self-signed with the SHA-1 one). */
  | { kind: "x509"; sha1Thumbprint: string; sha256Thumbprint: string };

export type AttestationOutcome =
  /** The device is who it says and an enabled enrollment admits it. */
  | { kind: "attested"; match: EnrollmentMatch; deviceId: string; credential: HubCredential }
  /** The enrollment that decides is disabled: the registration ends `disabled`. */
  | { kind: "disabled"; match: EnrollmentMatch }
  /** Not admitted. `reason` is safe to tell the device; `detail` (for the log) may say more. */
  | { kind: "refused"; reason: string; detail: string };

export const refused = (reason: string, detail = reason): AttestationOutcome => ({ kind: "refused", reason, detail });

/** What a device presented to prove who it is (device-api.md §4). */
export type DeviceEvidence =
  /** The SharedAccessSignature text: HTTP Authorization, MQTT password, AMQP SASL PLAIN password. */
  | { kind: "sas"; token: string }
  /** DER certificates from the TLS handshake, leaf first. */
  | { kind: "x509"; chain: readonly Buffer[] }
  | { kind: "none" };
