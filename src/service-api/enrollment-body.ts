// PUT bodies of enrollments and groups → stored records (service-api.md §3.1, §4, §11.8).
// Read-only fields are ignored; anything malformed is a 400 naming the field.
import { randomBytes } from "node:crypto";
import { certificateInfo, parseCertificate, toPem } from "../attestation/x509-info.js";
import type {
  AllocationPolicy,
  AttestationMechanism,
  EnrollmentGroup,
  EnrollmentSettings,
  IndividualEnrollment,
  X509Attestation,
  X509Certificates,
  X509CertificateWithInfo,
} from "../domain/enrollment.js";
import { ProvisioError } from "../domain/errors.js";
import { newEtag, nowUtc } from "../domain/etag.js";
import { enrollmentGroupId, isValidDeviceId, registrationId } from "../domain/ids.js";
import { isObject } from "../domain/json.js";

const bad = (detail: string): ProvisioError => new ProvisioError("invalidBody", { detail });
const badAttestation = (detail: string): ProvisioError => new ProvisioError("invalidAttestation", { detail });

const ALLOCATION_POLICIES: readonly AllocationPolicy[] = ["hashed", "geoLatency", "static", "custom"];
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
// TPM keys arrive unpadded from some tools (service-api.md §3.1 capture): padding optional.
const BASE64_UNPADDED = /^[A-Za-z0-9+/]+={0,2}$/;

/** Absent and null mean the same: not set (service-api.md §4). */
const present = (v: unknown): boolean => v !== undefined && v !== null;

function optionalString(body: Record<string, unknown>, field: string): string | undefined {
  const v = body[field];
  if (!present(v)) return undefined;
  if (typeof v !== "string") throw bad(`'${field}' must be a string.`);
  return v;
}

function optionalObject(body: Record<string, unknown>, field: string): Record<string, unknown> | undefined {
  const v = body[field];
  if (!present(v)) return undefined;
  if (!isObject(v)) throw bad(`'${field}' must be a JSON object.`);
  return v;
}

function optionalBoolean(obj: Record<string, unknown>, field: string, where: string): boolean | undefined {
  const v = obj[field];
  if (!present(v)) return undefined;
  if (typeof v !== "boolean") throw bad(`'${where}.${field}' must be true or false.`);
  return v;
}

/** A fresh symmetric key: 64 random bytes, base64 (service-api.md §4.3). */
export const generateKey = (): string => randomBytes(64).toString("base64");

function symmetricKey(value: unknown, name: string, kept: string | undefined): string {
  if (!present(value)) return kept ?? generateKey();
  if (typeof value !== "string" || !BASE64.test(value)) {
    throw badAttestation(`symmetricKey.${name} must be base64`);
  }
  const bytes = Buffer.from(value, "base64").length;
  if (bytes < 16 || bytes > 64) {
    throw badAttestation(`symmetricKey.${name} must decode to 16-64 bytes, not ${bytes}`);
  }
  return value;
}

function certificateEntry(
  value: unknown,
  where: string,
  kept: X509CertificateWithInfo | undefined,
): X509CertificateWithInfo | undefined {
  if (!present(value)) return undefined;
  if (!isObject(value)) throw badAttestation(`${where} must be an object with a 'certificate'`);
  if (!present(value.certificate)) {
    // An entry echoed from a GET carries info only: keep the stored certificate (service-api.md §3.1).
    if (kept && present(value.info)) return kept;
    throw badAttestation(`${where}.certificate is missing`);
  }
  if (typeof value.certificate !== "string") throw badAttestation(`${where}.certificate must be a PEM string`);
  const cert = parseCertificate(value.certificate);
  if (!cert) throw badAttestation(`${where}.certificate is not a PEM or base64 DER X.509 certificate`);
  return { certificate: toPem(cert), info: certificateInfo(cert) };
}

function certificates(value: unknown, where: string, kept: X509Certificates | undefined): X509Certificates | undefined {
  if (!present(value)) return undefined;
  if (!isObject(value)) throw badAttestation(`${where} must be an object with 'primary' and/or 'secondary'`);
  const primary = certificateEntry(value.primary, `${where}.primary`, kept?.primary);
  const secondary = certificateEntry(value.secondary, `${where}.secondary`, kept?.secondary);
  if (!primary) throw badAttestation(`${where}.primary is required`);
  // The live service mirrors a lone primary into secondary (service-api.md §4.3).
  return { primary, secondary: secondary ?? primary };
}

function x509(value: unknown, isGroup: boolean, kept: X509Attestation | undefined): X509Attestation {
  if (!isObject(value)) throw badAttestation("type 'x509' needs an 'x509' object");
  if (isGroup) {
    const signing = certificates(value.signingCertificates, "x509.signingCertificates", kept?.signingCertificates);
    const refs = value.caReferences;
    if (signing) return { signingCertificates: signing };
    if (isObject(refs) && (typeof refs.primary === "string" || typeof refs.secondary === "string")) {
      const out: { primary?: string; secondary?: string } = {};
      if (typeof refs.primary === "string") out.primary = refs.primary;
      if (typeof refs.secondary === "string") out.secondary = refs.secondary;
      return { caReferences: out };
    }
    throw badAttestation("an x509 enrollment group needs x509.signingCertificates or x509.caReferences");
  }
  const client = certificates(value.clientCertificates, "x509.clientCertificates", kept?.clientCertificates);
  if (!client) throw badAttestation("an x509 individual enrollment needs x509.clientCertificates");
  return { clientCertificates: client };
}

function attestation(value: unknown, isGroup: boolean, kept: AttestationMechanism | undefined): AttestationMechanism {
  if (!isObject(value)) throw badAttestation("'attestation' is required and must be an object with a 'type'");
  switch (value.type) {
    case "symmetricKey": {
      const keys = isObject(value.symmetricKey) ? value.symmetricKey : {};
      const keptKeys = kept?.type === "symmetricKey" ? kept.symmetricKey : undefined;
      return {
        type: "symmetricKey",
        symmetricKey: {
          primaryKey: symmetricKey(keys.primaryKey, "primaryKey", keptKeys?.primaryKey),
          secondaryKey: symmetricKey(keys.secondaryKey, "secondaryKey", keptKeys?.secondaryKey),
        },
      };
    }
    case "tpm": {
      if (isGroup) throw badAttestation("enrollment groups cannot use TPM attestation; use symmetricKey or x509");
      const tpm = value.tpm;
      if (!isObject(tpm) || typeof tpm.endorsementKey !== "string" || tpm.endorsementKey === "") {
        throw badAttestation("tpm.endorsementKey is required");
      }
      if (!BASE64_UNPADDED.test(tpm.endorsementKey)) throw badAttestation("tpm.endorsementKey must be base64");
      if (
        present(tpm.storageRootKey) &&
        (typeof tpm.storageRootKey !== "string" || !BASE64_UNPADDED.test(tpm.storageRootKey))
      ) {
        throw badAttestation("tpm.storageRootKey must be base64");
      }
      return {
        type: "tpm",
        tpm: {
          endorsementKey: tpm.endorsementKey,
          ...(typeof tpm.storageRootKey === "string" ? { storageRootKey: tpm.storageRootKey } : {}),
        },
      };
    }
    case "x509":
      return { type: "x509", x509: x509(value.x509, isGroup, kept?.type === "x509" ? kept.x509 : undefined) };
    case undefined:
    case null:
      throw badAttestation("'attestation.type' is required: symmetricKey, x509 or tpm");
    default:
      throw badAttestation(`'attestation.type' ${JSON.stringify(value.type)} is not one of symmetricKey, x509, tpm`);
  }
}

function settings(
  body: Record<string, unknown>,
  isGroup: boolean,
  existing: EnrollmentSettings | undefined,
): EnrollmentSettings {
  const now = nowUtc();
  const out: EnrollmentSettings = {
    attestation: attestation(body.attestation, isGroup, existing?.attestation),
    provisioningStatus: "enabled",
    etag: newEtag(),
    createdDateTimeUtc: existing?.createdDateTimeUtc ?? now,
    lastUpdatedDateTimeUtc: now,
  };

  const status = body.provisioningStatus;
  if (present(status)) {
    if (status !== "enabled" && status !== "disabled") throw bad("'provisioningStatus' must be enabled or disabled.");
    out.provisioningStatus = status;
  }

  const capabilities = optionalObject(body, "capabilities");
  if (capabilities) out.capabilities = { iotEdge: optionalBoolean(capabilities, "iotEdge", "capabilities") ?? false };

  const hubHost = optionalString(body, "iotHubHostName");
  if (hubHost !== undefined) out.iotHubHostName = hubHost;

  const twin = optionalObject(body, "initialTwin");
  if (twin) {
    if (present(twin.tags) && !isObject(twin.tags)) throw bad("'initialTwin.tags' must be a JSON object.");
    if (present(twin.properties) && !isObject(twin.properties)) {
      throw bad("'initialTwin.properties' must be a JSON object.");
    }
    const desired = isObject(twin.properties) ? twin.properties.desired : undefined;
    if (present(desired) && !isObject(desired)) throw bad("'initialTwin.properties.desired' must be a JSON object.");
    out.initialTwin = {
      ...(isObject(twin.tags) ? { tags: twin.tags } : {}),
      ...(isObject(desired) ? { properties: { desired } } : {}),
    };
  }

  const reprovision = optionalObject(body, "reprovisionPolicy");
  if (reprovision) {
    out.reprovisionPolicy = {
      updateHubAssignment: optionalBoolean(reprovision, "updateHubAssignment", "reprovisionPolicy") ?? true,
      migrateDeviceData: optionalBoolean(reprovision, "migrateDeviceData", "reprovisionPolicy") ?? true,
    };
  }

  const policy = body.allocationPolicy;
  if (present(policy)) {
    if (!ALLOCATION_POLICIES.includes(policy as AllocationPolicy)) {
      throw bad(`'allocationPolicy' must be one of ${ALLOCATION_POLICIES.join(", ")}.`);
    }
    out.allocationPolicy = policy as AllocationPolicy;
  }

  const hubs = body.iotHubs;
  if (present(hubs)) {
    if (!Array.isArray(hubs) || !hubs.every((h) => typeof h === "string" && h !== "")) {
      throw bad("'iotHubs' must be an array of hub host names.");
    }
    out.iotHubs = hubs as string[];
  }

  const custom = optionalObject(body, "customAllocationDefinition");
  if (custom) {
    if (typeof custom.webhookUrl !== "string" || !/^https?:\/\//i.test(custom.webhookUrl)) {
      throw bad("'customAllocationDefinition.webhookUrl' must be an http(s) URL.");
    }
    if (typeof custom.apiVersion !== "string" || custom.apiVersion === "") {
      throw bad("'customAllocationDefinition.apiVersion' is required.");
    }
    out.customAllocationDefinition = { webhookUrl: custom.webhookUrl, apiVersion: custom.apiVersion };
  }
  if (out.allocationPolicy === "custom" && !out.customAllocationDefinition) {
    throw bad("allocationPolicy 'custom' needs a customAllocationDefinition with webhookUrl and apiVersion.");
  }
  if (out.allocationPolicy === "static" && !out.iotHubHostName && out.iotHubs?.length !== 1) {
    throw bad("allocationPolicy 'static' needs exactly one hub in 'iotHubs'.");
  }
  return out;
}

function checkBodyId(body: unknown, field: string, pathId: string): Record<string, unknown> {
  if (!isObject(body)) throw bad("The body must be a JSON object.");
  const bodyId = body[field];
  if (!present(bodyId)) throw bad(`'${field}' is required.`);
  if (typeof bodyId !== "string") throw bad(`'${field}' must be a string.`);
  if (bodyId.toLowerCase() !== pathId.toLowerCase()) {
    throw new ProvisioError("idMismatch", { field, bodyId, pathId });
  }
  return body;
}

/** Build the record an individual-enrollment PUT stores; `existing` supplies kept values. */
export function individualEnrollmentFromBody(
  body: unknown,
  pathId: string,
  existing: IndividualEnrollment | undefined,
): IndividualEnrollment {
  const b = checkBodyId(body, "registrationId", pathId);
  const out: IndividualEnrollment = {
    // Keep the first spelling: ids are case-insensitive and shown as first stored.
    registrationId: existing?.registrationId ?? registrationId(b.registrationId),
    ...settings(b, false, existing),
  };
  const deviceId = optionalString(b, "deviceId");
  if (deviceId !== undefined) {
    if (!isValidDeviceId(deviceId)) {
      throw bad(
        `'deviceId' '${deviceId}' is not a valid IoT Hub device id (1-128 of A-Z a-z 0-9 - . % _ * ? ! ( ) , : = @ $ ').`,
      );
    }
    out.deviceId = deviceId;
  }
  const info = optionalObject(b, "optionalDeviceInformation");
  if (info) out.optionalDeviceInformation = info;
  return out;
}

export function enrollmentGroupFromBody(
  body: unknown,
  pathId: string,
  existing: EnrollmentGroup | undefined,
): EnrollmentGroup {
  const b = checkBodyId(body, "enrollmentGroupId", pathId);
  return {
    enrollmentGroupId: existing?.enrollmentGroupId ?? enrollmentGroupId(b.enrollmentGroupId),
    ...settings(b, true, existing),
  };
}
