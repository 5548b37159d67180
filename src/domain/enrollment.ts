// Enrollment records as stored, service-api.md §4.
import type { EnrollmentGroupId, RegistrationId } from "./ids.js";

export type AttestationType = "none" | "tpm" | "x509" | "symmetricKey";
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

export interface AttestationMechanism {
  type: AttestationType;
  tpm?: TpmAttestation;
  x509?: X509Attestation;
  symmetricKey?: SymmetricKeyAttestation;
}

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
