// Enrollment records as stored, service-api.md §4.
import type { EnrollmentGroupId, RegistrationId } from "./ids.js";

export type AllocationPolicy = "hashed" | "geoLatency" | "static" | "custom";
export type ProvisioningStatus = "enabled" | "disabled";

export interface SymmetricKeyAttestation {
  primaryKey: string;
  secondaryKey: string;
}

export interface TpmAttestation {
  endorsementKey: string;
  storageRootKey?: string;
}

export interface X509CertificateInfo {
  subjectName: string;
  sha1Thumbprint: string;
  sha256Thumbprint: string;
  issuerName: string;
  notBeforeUtc: string;
  notAfterUtc: string;
  serialNumber: string;
  version: number;
}

/** The PEM is write-only: stored, never returned (service-api.md §4.3). */
export interface X509CertificateWithInfo {
  certificate?: string;
  info: X509CertificateInfo;
}

export interface X509Certificates {
  primary?: X509CertificateWithInfo;
  secondary?: X509CertificateWithInfo;
}

export interface X509Attestation {
  clientCertificates?: X509Certificates;
  signingCertificates?: X509Certificates;
  caReferences?: { primary?: string; secondary?: string };
}

/** How an enrollment's devices prove who they are: one mechanism, with its own evidence. */
export type AttestationMechanism =
  | { type: "symmetricKey"; symmetricKey: SymmetricKeyAttestation }
  | { type: "x509"; x509: X509Attestation }
  | { type: "tpm"; tpm: TpmAttestation };

export type AttestationType = AttestationMechanism["type"];

/** The keys of a symmetric-key mechanism; undefined for the others. */
export const symmetricKeysOf = (a: AttestationMechanism): SymmetricKeyAttestation | undefined =>
  a.type === "symmetricKey" ? a.symmetricKey : undefined;

/** The certificates of an X.509 mechanism; undefined for the others. */
export const x509Of = (a: AttestationMechanism): X509Attestation | undefined =>
  a.type === "x509" ? a.x509 : undefined;

export interface InitialTwin {
  tags?: Record<string, unknown>;
  properties?: { desired?: Record<string, unknown> };
}

export interface ReprovisionPolicy {
  updateHubAssignment: boolean;
  migrateDeviceData: boolean;
}

export interface CustomAllocationDefinition {
  webhookUrl: string;
  apiVersion: string;
}

/** Fields individual enrollments and groups share. */
export interface EnrollmentSettings {
  attestation: AttestationMechanism;
  capabilities?: { iotEdge: boolean };
  iotHubHostName?: string;
  initialTwin?: InitialTwin;
  provisioningStatus: ProvisioningStatus;
  reprovisionPolicy?: ReprovisionPolicy;
  allocationPolicy?: AllocationPolicy;
  iotHubs?: string[];
  customAllocationDefinition?: CustomAllocationDefinition;
  etag: string;
  createdDateTimeUtc: string;
  lastUpdatedDateTimeUtc: string;
}

export interface IndividualEnrollment extends EnrollmentSettings {
  registrationId: RegistrationId;
  deviceId?: string;
  optionalDeviceInformation?: Record<string, unknown>;
}

export interface EnrollmentGroup extends EnrollmentSettings {
  enrollmentGroupId: EnrollmentGroupId;
}

/** Behave as if both flags were true when unset (service-api.md §4.5). */
export const effectiveReprovisionPolicy = (e: EnrollmentSettings): ReprovisionPolicy =>
  e.reprovisionPolicy ?? { updateHubAssignment: true, migrateDeviceData: true };
