// Enrollments and device tokens the SDK suites create over and over: one place for them.
import type { ProvisioningServiceClient } from "azure-iot-provisioning-service";
import type { EnrollmentGroup, IndividualEnrollment } from "azure-iot-provisioning-service/dist/interfaces.js";
import { createSasToken } from "../../src/attestation/sas-token.js";
import type { ProvisioProcess } from "./provisio-process.js";

/** A symmetric-key individual enrollment (keys generated); resolves to its primary key. */
export async function enrollIndividual(
  svc: ProvisioningServiceClient,
  registrationId: string,
  extra: Record<string, unknown> = {},
): Promise<string> {
  const body = { registrationId, attestation: { type: "symmetricKey" }, ...extra } as unknown as IndividualEnrollment;
  return (await svc.createOrUpdateIndividualEnrollment(body)).responseBody.attestation.symmetricKey?.primaryKey ?? "";
}

/** A symmetric-key enrollment group (keys generated); resolves to its primary group key. */
export async function enrollGroup(
  svc: ProvisioningServiceClient,
  enrollmentGroupId: string,
  extra: Record<string, unknown> = {},
): Promise<string> {
  const body = { enrollmentGroupId, attestation: { type: "symmetricKey" }, ...extra } as unknown as EnrollmentGroup;
  return (await svc.createOrUpdateEnrollmentGroup(body)).responseBody.attestation.symmetricKey?.primaryKey ?? "";
}

/** The device SAS token the SDK would send for `registrationId` (device-api.md §4.1). */
export const deviceToken = (p: ProvisioProcess, registrationId: string, key: string): string =>
  createSasToken(
    key,
    `${p.info.idScope}/registrations/${registrationId}`,
    Math.floor(Date.now() / 1000) + 600,
    "registration",
  );
