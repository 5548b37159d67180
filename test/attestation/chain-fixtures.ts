// Records for X.509 attestation tests: enrollments, groups and CA store entries built around
// certificates from cert-factory (behaviors.md §2.2, §3).
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { attestX509 as attestWithTrust, X509Trust } from "../../src/attestation/x509-attestation.js";
import { certificateInfo, parseCertificate } from "../../src/attestation/x509-info.js";
import type {
  EnrollmentGroup,
  IndividualEnrollment,
  ProvisioningStatus,
  X509CertificateInfo,
  X509Certificates,
} from "../../src/domain/enrollment.js";
import type { EnrollmentMatch } from "../../src/domain/enrollment-match.js";
import type { EnrollmentGroupId, RegistrationId } from "../../src/domain/ids.js";
import type { CaCertificate } from "../../src/domain/instance.js";
import type { IssuedCertificate } from "../../src/security/cert-factory.js";

const STAMP = "2025-01-01T00:00:00Z";

/** The DER a device presents in the TLS handshake. */
export const der = (c: IssuedCertificate): Buffer => new X509Certificate(c.certPem).raw;

/** The chain a device presents, leaf first. */
export const chainOf = (...certs: IssuedCertificate[]): Buffer[] => certs.map(der);

export function info(c: IssuedCertificate): X509CertificateInfo {
  const cert = parseCertificate(c.certPem);
  if (!cert) throw new Error("cert-factory produced an unparsable certificate");
  return certificateInfo(cert);
}

/** Primary (and secondary) certificates with their info, as the service API stores them. */
export const certificates = (primary: IssuedCertificate, secondary?: IssuedCertificate): X509Certificates => ({
  primary: { certificate: primary.certPem, info: info(primary) },
  ...(secondary ? { secondary: { certificate: secondary.certPem, info: info(secondary) } } : {}),
});

export function caCertificate(name: string, c: IssuedCertificate, isVerified: boolean): CaCertificate {
  const i = info(c);
  return {
    name,
    certificatePem: c.certPem,
    subject: i.subjectName,
    thumbprint: c.sha1,
    expiry: i.notAfterUtc,
    isVerified,
    created: STAMP,
    updated: STAMP,
    etag: `"${name}"`,
  };
}

const settings = (status: ProvisioningStatus) => ({
  provisioningStatus: status,
  etag: '"1"',
  createdDateTimeUtc: STAMP,
  lastUpdatedDateTimeUtc: STAMP,
});

export function x509Individual(
  registrationId: string,
  clientCertificates: X509Certificates,
  status: ProvisioningStatus = "enabled",
): IndividualEnrollment {
  return {
    registrationId: registrationId as RegistrationId,
    attestation: { type: "x509", x509: { clientCertificates } },
    ...settings(status),
  };
}

export function symmetricKeyIndividual(
  registrationId: string,
  status: ProvisioningStatus = "enabled",
): IndividualEnrollment {
  const key = Buffer.alloc(32, 7).toString("base64");
  return {
    registrationId: registrationId as RegistrationId,
    attestation: { type: "symmetricKey", symmetricKey: { primaryKey: key, secondaryKey: key } },
    ...settings(status),
  };
}

/** A group on an uploaded signing certificate. */
export function signingGroup(
  id: string,
  signing: IssuedCertificate,
  status: ProvisioningStatus = "enabled",
): EnrollmentGroup {
  return {
    enrollmentGroupId: id as EnrollmentGroupId,
    attestation: { type: "x509", x509: { signingCertificates: certificates(signing) } },
    ...settings(status),
  };
}

/** A group referencing CA store certificates by name. */
export function caReferenceGroup(
  id: string,
  primary: string,
  secondary?: string,
  status: ProvisioningStatus = "enabled",
): EnrollmentGroup {
  return {
    enrollmentGroupId: id as EnrollmentGroupId,
    attestation: { type: "x509", x509: { caReferences: { primary, ...(secondary ? { secondary } : {}) } } },
    ...settings(status),
  };
}

/**
 * The outcome shape these suites were written against (ok / disabled / refused with summary and
 * detail), read off an AttestationOutcome so that every assertion keeps its words.
 */
export type X509Outcome =
  | { ok: true; match: EnrollmentMatch; leafSha1: string; leafSha256: string }
  | { ok: false; disabled: EnrollmentMatch }
  | { ok: false; refused: { summary: string; detail: string } };

/** One X509Trust per scope content, as the scope views keep one until the scope changes. */
const trusts = new Map<string, X509Trust>();

export function attestX509(input: {
  registrationId: string;
  chain: readonly Buffer[];
  individual: IndividualEnrollment | undefined;
  groups: readonly EnrollmentGroup[];
  caCertificates: readonly CaCertificate[];
  now: Date;
}): X509Outcome {
  const key = JSON.stringify([input.groups, input.caCertificates]);
  let trust = trusts.get(key);
  if (!trust) {
    trust = new X509Trust(input.groups, input.caCertificates);
    trusts.set(key, trust);
  }
  const outcome = attestWithTrust({ ...input, trust });
  switch (outcome.kind) {
    case "attested": {
      assert.equal(outcome.credential.kind, "x509");
      const { sha1Thumbprint, sha256Thumbprint } = outcome.credential as {
        sha1Thumbprint: string;
        sha256Thumbprint: string;
      };
      return { ok: true, match: outcome.match, leafSha1: sha1Thumbprint, leafSha256: sha256Thumbprint };
    }
    case "disabled":
      return { ok: false, disabled: outcome.match };
    case "refused":
      return { ok: false, refused: { summary: outcome.reason, detail: outcome.detail } };
  }
}

export type X509AttestationInput = Parameters<typeof attestX509>[0];
