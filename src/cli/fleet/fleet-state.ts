import type { DpsClient } from "../dps-client.js";
import { INSTANCE_API, type InstanceResource, listKeys, listLinkedHubKeys } from "../instance-resource.js";
import { DpsSession, type Opts } from "../server-options.js";
import type { CertificateEntry, EnrollmentEntry, InstanceEntry, Manifest } from "./manifest.js";
import type { CertificateState, EnrollmentState, InstanceState } from "./plan.js";

const API = "api-version=2021-10-01";
const seg = encodeURIComponent;

interface CertificateResource {
  name: string;
  etag: string;
  properties: { thumbprint: string; isVerified: boolean; subject: string; certificate?: string };
}

/** A session for the named instance: management calls as the CLI's credentials, data plane as its policy. */
export const sessionFor = (opts: Opts, name: string): DpsSession => new DpsSession({ ...opts, dpsName: name });

async function readEnrollments(
  client: DpsClient,
  collection: "enrollments" | "enrollmentGroups",
  idField: "registrationId" | "enrollmentGroupId",
  withCertificates: boolean,
): Promise<Map<string, EnrollmentState>> {
  const all = (await client.query(`/${collection}/query?${API}`)) as EnrollmentEntry[];
  const out = new Map<string, EnrollmentState>();
  // attestationmechanism gives keys (and with includeCertificates the PEMs); a few at a time.
  const lanes = 8;
  let next = 0;
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (next < all.length) {
        const body = all[next++] as EnrollmentEntry;
        const id = String(body[idField]);
        const extra = withCertificates ? "&includeCertificates=true" : "";
        const attestation = (await client.call(
          "POST",
          `/${collection}/${seg(id)}/attestationmechanism?${API}${extra}`,
        )) as Record<string, unknown>;
        out.set(id.toLowerCase(), { body, attestation });
      }
    }),
  );
  return out;
}

/** The instance as it stands; `exists: false` (and empty lists) when there is none by that name. */
export async function readInstanceState(opts: Opts, name: string, withPem = false): Promise<InstanceState> {
  const session = sessionFor(opts, name);
  const path = `/provisioningServices/${seg(name)}`;
  const reply = await session.client.send("GET", `${path}?${INSTANCE_API}`);
  if (reply.status === 404) {
    return {
      name,
      exists: false,
      etag: "",
      allocationPolicy: "Hashed",
      publicNetworkAccess: "Enabled",
      ipFilterRules: [],
      hubs: [],
      policies: [],
      certificates: [],
      groups: new Map(),
      enrollments: new Map(),
    };
  }
  const resource = (await session.client.call("GET", `${path}?${INSTANCE_API}`)) as InstanceResource;
  const client = await session.dataPlane("EnrollmentRead");
  const [hubs, policies, certs, groups, enrollments] = await Promise.all([
    listLinkedHubKeys(session, path),
    listKeys(session, path),
    session.client.call("GET", `${path}/certificates?${INSTANCE_API}${withPem ? "&includeCertificate=true" : ""}`),
    readEnrollments(client, "enrollmentGroups", "enrollmentGroupId", withPem),
    readEnrollments(client, "enrollments", "registrationId", withPem),
  ]);
  const certificates: CertificateState[] = ((certs as { value: CertificateResource[] }).value ?? []).map((c) => ({
    name: c.name,
    etag: c.etag,
    thumbprint: c.properties.thumbprint.toUpperCase(),
    isVerified: c.properties.isVerified,
    subject: c.properties.subject,
    ...(c.properties.certificate ? { certificate: c.properties.certificate } : {}),
  }));
  const props = resource.properties;
  return {
    name: resource.name,
    exists: true,
    etag: resource.etag,
    allocationPolicy: String(props.allocationPolicy),
    publicNetworkAccess: String(props.publicNetworkAccess ?? "Enabled"),
    ipFilterRules: Array.isArray(props.ipFilterRules) ? props.ipFilterRules : [],
    hubs: hubs.map((h) => ({
      name: h.name,
      connectionString: h.connectionString,
      location: h.location,
      allocationWeight: h.allocationWeight ?? 1,
      applyAllocationPolicy: h.applyAllocationPolicy ?? true,
    })),
    policies,
    certificates,
    groups,
    enrollments,
  };
}

const SERVER_OWNED = ["etag", "createdDateTimeUtc", "lastUpdatedDateTimeUtc", "registrationState"];

/** An enrollment for the file: what the server owns left out; symmetric keys only with secrets. */
function exportEnrollment(s: EnrollmentState, secrets: boolean): EnrollmentEntry {
  const out: EnrollmentEntry = { ...s.body };
  for (const k of SERVER_OWNED) delete out[k];
  // attestationmechanism with includeCertificates: keys, and X.509 PEMs with their info (public,
  // and what recreates the enrollment elsewhere).
  out.attestation = s.attestation.type === "symmetricKey" && !secrets ? { type: "symmetricKey" } : s.attestation;
  return out;
}

const byId = (field: string) => (a: EnrollmentEntry, b: EnrollmentEntry) =>
  String(a[field]).localeCompare(String(b[field]));

/** An instance as a manifest entry. Without secrets: no symmetric or policy keys, hub keys masked. */
export function exportInstance(s: InstanceState, secrets: boolean): InstanceEntry {
  const certificates: CertificateEntry[] = s.certificates.map((c) => ({
    name: c.name,
    ...(c.certificate ? { certificate: c.certificate } : { thumbprint: c.thumbprint, subject: c.subject }),
    verified: c.isVerified,
  }));
  return {
    name: s.name,
    allocationPolicy: s.allocationPolicy,
    publicNetworkAccess: s.publicNetworkAccess,
    ...(s.ipFilterRules.length > 0 ? { ipFilterRules: s.ipFilterRules } : {}),
    linkedHubs: s.hubs.map((h) => ({
      connectionString: secrets ? h.connectionString : h.connectionString.replace(/(SharedAccessKey=)[^;]*/i, "$1****"),
      location: h.location ?? "local",
      allocationWeight: h.allocationWeight ?? 1,
      applyAllocationPolicy: h.applyAllocationPolicy ?? true,
    })),
    policies: s.policies.map((p) => ({
      keyName: p.keyName,
      rights: p.rights,
      ...(secrets ? { primaryKey: p.primaryKey, secondaryKey: p.secondaryKey } : {}),
    })),
    certificates,
    enrollmentGroups: [...s.groups.values()].map((g) => exportEnrollment(g, secrets)).sort(byId("enrollmentGroupId")),
    enrollments: [...s.enrollments.values()].map((e) => exportEnrollment(e, secrets)).sort(byId("registrationId")),
  };
}

/** The instances to export: `--dps-name`, else every one the credentials may list (else their own). */
export async function exportManifest(opts: Opts, secrets: boolean): Promise<Manifest> {
  const session = new DpsSession(opts);
  const named = typeof opts.dpsName === "string" ? opts.dpsName : undefined;
  let names: string[];
  if (named) names = [named];
  else {
    const reply = await session.client.send("GET", `/provisioningServices?${INSTANCE_API}`);
    const listed = (reply.body as { value?: { name: string }[] } | undefined)?.value;
    names = reply.status === 200 && Array.isArray(listed) ? listed.map((i) => i.name) : [await session.instanceName()];
  }
  const states = await Promise.all(names.map((n) => readInstanceState(opts, n, true)));
  return { provisioningServices: states.map((s) => exportInstance(s, secrets)) };
}
