// Records → response bodies, with the live service's redaction rules (service-api.md §3.2, §3.4,
// §11.10): GET and query hide symmetric keys; no response carries a certificate PEM.
import type {
  AttestationMechanism,
  EnrollmentGroup,
  IndividualEnrollment,
  SymmetricKeyAttestation,
  TpmAttestation,
  X509Attestation,
  X509Certificates,
} from "./enrollment.js";
import type { DeviceRegistrationState } from "./registration-state.js";

const infoOnly = (c: X509Certificates): X509Certificates => ({
  ...(c.primary ? { primary: { info: c.primary.info } } : {}),
  ...(c.secondary ? { secondary: { info: c.secondary.info } } : {}),
});

function x509Wire(x: X509Attestation): X509Attestation {
  return {
    ...(x.clientCertificates ? { clientCertificates: infoOnly(x.clientCertificates) } : {}),
    ...(x.signingCertificates ? { signingCertificates: infoOnly(x.signingCertificates) } : {}),
    ...(x.caReferences ? { caReferences: x.caReferences } : {}),
  };
}

/** An attestation as responses show it: symmetric keys only when asked for, X.509 certificates as info only. */
export type AttestationWire =
  | { type: "symmetricKey"; symmetricKey?: SymmetricKeyAttestation }
  | { type: "x509"; x509: X509Attestation }
  | { type: "tpm"; tpm: TpmAttestation };

/** `withKeys`: PUT responses and attestationmechanism carry keys; GET and query do not. */
export function attestationWire(a: AttestationMechanism, withKeys: boolean): AttestationWire {
  switch (a.type) {
    case "symmetricKey":
      return withKeys ? { type: a.type, symmetricKey: a.symmetricKey } : { type: a.type };
    case "x509":
      return { type: a.type, x509: x509Wire(a.x509) };
    case "tpm":
      return a;
  }
}

export function enrollmentWire(
  e: IndividualEnrollment,
  withKeys: boolean,
  registrationState?: DeviceRegistrationState | { registrationId: string; status: "unassigned" },
): Record<string, unknown> {
  return {
    ...e,
    attestation: attestationWire(e.attestation, withKeys),
    ...(registrationState ? { registrationState } : {}),
  };
}

export function groupWire(g: EnrollmentGroup, withKeys: boolean): Record<string, unknown> {
  return { ...g, attestation: attestationWire(g.attestation, withKeys) };
}
