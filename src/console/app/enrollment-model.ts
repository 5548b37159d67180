// The enrollment form of the console and the DPS body it becomes (service-api.md §4), both ways.
// Pure: the form components hold an EnrollmentForm, and only this file knows the wire shape.

export type EnrollmentKind = "individual" | "group";
export type Attestation = "symmetricKey" | "x509" | "tpm";
/** "" is the service's own allocation policy. */
export type FormAllocation = "" | "hashed" | "geoLatency" | "static" | "custom";
export type Reprovision = "reprovisionandmigratedata" | "reprovisionandresetdata" | "never";

export interface EnrollmentForm {
  kind: EnrollmentKind;
  /** Registration id of an individual enrollment, or the enrollment group id. */
  id: string;
  deviceId: string;
  attestation: Attestation;
  /** Empty: the service generates the keys. */
  primaryKey: string;
  secondaryKey: string;
  /** PEM text: a device certificate (individual) or a signing certificate (group). */
  primaryCertificate: string;
  secondaryCertificate: string;
  /** A group whose signing certificate is a CA certificate uploaded to the service, by name. */
  caName: string;
  endorsementKey: string;
  enabled: boolean;
  iotEdge: boolean;
  /** JSON text of `initialTwin`: `{ "tags": {…}, "properties": { "desired": {…} } }`. */
  initialTwin: string;
  allocationPolicy: FormAllocation;
  iotHubs: string[];
  webhookUrl: string;
  apiVersion: string;
  reprovision: Reprovision;
  /** Set when editing: the write is conditional on it. */
  etag?: string;
}

export const emptyForm = (kind: EnrollmentKind): EnrollmentForm => ({
  kind,
  id: "",
  deviceId: "",
  attestation: "symmetricKey",
  primaryKey: "",
  secondaryKey: "",
  primaryCertificate: "",
  secondaryCertificate: "",
  caName: "",
  endorsementKey: "",
  enabled: true,
  iotEdge: false,
  initialTwin: "",
  allocationPolicy: "",
  iotHubs: [],
  webhookUrl: "",
  apiVersion: "2021-10-01",
  reprovision: "reprovisionandmigratedata",
});

/** What is wrong with a form, field by field; empty when it can be sent. */
export function formProblems(f: EnrollmentForm): Partial<Record<keyof EnrollmentForm, string>> {
  const p: Partial<Record<keyof EnrollmentForm, string>> = {};
  if (!/^[a-z0-9.\-_:]{1,128}$/i.test(f.id)) {
    p.id = `${f.kind === "group" ? "Group" : "Registration"} ID: 1-128 letters, digits, '-', '.', '_' or ':'.`;
  }
  if (f.attestation === "symmetricKey") {
    if (f.primaryKey !== "" && !isKey(f.primaryKey)) p.primaryKey = "Base64 of 16 to 64 bytes, or empty to generate.";
    if (f.secondaryKey !== "" && !isKey(f.secondaryKey))
      p.secondaryKey = "Base64 of 16 to 64 bytes, or empty to generate.";
  }
  if (f.attestation === "x509") {
    const hasCa = f.kind === "group" && f.caName.trim() !== "";
    if (!hasCa && !f.primaryCertificate.includes("BEGIN CERTIFICATE")) {
      p.primaryCertificate =
        f.kind === "group"
          ? "Paste or load the signing certificate (PEM), or name an uploaded CA certificate."
          : "Paste or load the device certificate (PEM).";
    }
    if (f.secondaryCertificate !== "" && !f.secondaryCertificate.includes("BEGIN CERTIFICATE")) {
      p.secondaryCertificate = "A PEM certificate, or empty.";
    }
  }
  if (f.attestation === "tpm") {
    if (f.kind === "group") p.attestation = "TPM attestation is for individual enrollments only.";
    else if (f.endorsementKey.trim() === "") p.endorsementKey = "The TPM's endorsement key (base64) is required.";
  }
  if (f.initialTwin.trim() !== "") {
    try {
      const twin = JSON.parse(f.initialTwin);
      if (twin === null || typeof twin !== "object" || Array.isArray(twin)) p.initialTwin = "A JSON object.";
    } catch (e) {
      p.initialTwin = `Not JSON: ${(e as Error).message}`;
    }
  }
  if (f.allocationPolicy === "static" && f.iotHubs.length !== 1) p.iotHubs = "Static allocation needs exactly one hub.";
  if (f.allocationPolicy === "custom") {
    if (!/^https?:\/\//i.test(f.webhookUrl)) p.webhookUrl = "The webhook URL (https://…) is required.";
    if (f.apiVersion.trim() === "") p.apiVersion = "The webhook's API version is required.";
  }
  return p;
}

function isKey(k: string): boolean {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(k) || k.length % 4 !== 0) return false;
  const bytes = (k.length / 4) * 3 - (k.endsWith("==") ? 2 : k.endsWith("=") ? 1 : 0);
  return bytes >= 16 && bytes <= 64;
}

const REPROVISION: Record<Reprovision, { updateHubAssignment: boolean; migrateDeviceData: boolean }> = {
  reprovisionandmigratedata: { updateHubAssignment: true, migrateDeviceData: true },
  reprovisionandresetdata: { updateHubAssignment: true, migrateDeviceData: false },
  never: { updateHubAssignment: false, migrateDeviceData: false },
};

const pem = (text: string) => ({ certificate: text.trim() });

function attestationBody(f: EnrollmentForm): Record<string, unknown> {
  if (f.attestation === "symmetricKey") {
    return {
      type: "symmetricKey",
      symmetricKey: {
        ...(f.primaryKey ? { primaryKey: f.primaryKey } : {}),
        ...(f.secondaryKey ? { secondaryKey: f.secondaryKey } : {}),
      },
    };
  }
  if (f.attestation === "tpm") return { type: "tpm", tpm: { endorsementKey: f.endorsementKey.trim() } };
  const certificates = {
    primary: pem(f.primaryCertificate),
    ...(f.secondaryCertificate.trim() ? { secondary: pem(f.secondaryCertificate) } : {}),
  };
  if (f.kind === "individual") return { type: "x509", x509: { clientCertificates: certificates } };
  if (f.caName.trim()) return { type: "x509", x509: { caReferences: { primary: f.caName.trim() } } };
  return { type: "x509", x509: { signingCertificates: certificates } };
}

/** The PUT body of the form (call formProblems first). */
export function formToBody(f: EnrollmentForm): Record<string, unknown> {
  const body: Record<string, unknown> = {
    ...(f.kind === "group" ? { enrollmentGroupId: f.id } : { registrationId: f.id }),
    ...(f.kind === "individual" && f.deviceId.trim() ? { deviceId: f.deviceId.trim() } : {}),
    attestation: attestationBody(f),
    capabilities: { iotEdge: f.iotEdge },
    provisioningStatus: f.enabled ? "enabled" : "disabled",
    reprovisionPolicy: REPROVISION[f.reprovision],
  };
  if (f.initialTwin.trim()) body.initialTwin = JSON.parse(f.initialTwin);
  if (f.allocationPolicy) {
    body.allocationPolicy = f.allocationPolicy;
    if (f.iotHubs.length > 0) body.iotHubs = f.iotHubs;
    if (f.allocationPolicy === "custom") {
      body.customAllocationDefinition = { webhookUrl: f.webhookUrl.trim(), apiVersion: f.apiVersion.trim() };
    }
  }
  if (f.etag) body.etag = f.etag;
  return body;
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (v && typeof v === "object" && !Array.isArray(v) ? (v as Json) : {});
const str = (v: unknown): string => (typeof v === "string" ? v : "");

/**
 * The form of a stored enrollment: `record` as GET returns it, `attestation` as the
 * attestationmechanism call returns it with certificates (so that a save keeps keys and PEMs).
 */
export function bodyToForm(kind: EnrollmentKind, record: Json, attestation: Json): EnrollmentForm {
  const f = emptyForm(kind);
  f.id = str(kind === "group" ? record.enrollmentGroupId : record.registrationId);
  f.deviceId = str(record.deviceId);
  const type = str(attestation.type) || str(obj(record.attestation).type);
  f.attestation = type === "x509" ? "x509" : type === "tpm" ? "tpm" : "symmetricKey";
  const sk = obj(attestation.symmetricKey);
  f.primaryKey = str(sk.primaryKey);
  f.secondaryKey = str(sk.secondaryKey);
  const x509 = obj(attestation.x509);
  const certs = obj(kind === "group" ? x509.signingCertificates : x509.clientCertificates);
  f.primaryCertificate = str(obj(certs.primary).certificate);
  f.secondaryCertificate = str(obj(certs.secondary).certificate);
  f.caName = str(obj(x509.caReferences).primary);
  f.endorsementKey = str(obj(attestation.tpm).endorsementKey);
  f.enabled = record.provisioningStatus !== "disabled";
  f.iotEdge = obj(record.capabilities).iotEdge === true;
  const twin = record.initialTwin;
  f.initialTwin = twin && Object.keys(obj(twin)).length > 0 ? JSON.stringify(twin, null, 2) : "";
  const policy = str(record.allocationPolicy);
  f.allocationPolicy = (["hashed", "geoLatency", "static", "custom"].includes(policy) ? policy : "") as FormAllocation;
  f.iotHubs = Array.isArray(record.iotHubs) ? record.iotHubs.filter((h): h is string => typeof h === "string") : [];
  const custom = obj(record.customAllocationDefinition);
  f.webhookUrl = str(custom.webhookUrl);
  f.apiVersion = str(custom.apiVersion) || f.apiVersion;
  const rp = obj(record.reprovisionPolicy);
  f.reprovision =
    rp.updateHubAssignment === false
      ? "never"
      : rp.migrateDeviceData === false
        ? "reprovisionandresetdata"
        : f.reprovision;
  const etag = str(record.etag);
  if (etag) f.etag = etag;
  return f;
}
