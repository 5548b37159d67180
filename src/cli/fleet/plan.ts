// What `provisio apply` would change: the desired instance (manifest.ts) against what the server
// holds (fleet-state.ts), object by object — create, update with the fields that differ, or (with
// --prune) delete. Pure. Comparisons see what a person would: defaults the server fills in count
// as unset, keys and certificates only where the file gives them, certificates by thumbprint.
import { isObject } from "../../domain/json.js";
import {
  type CertificateEntry,
  type EnrollmentEntry,
  type HubEntry,
  hostOfHub,
  type InstanceEntry,
  type PolicyEntry,
  thumbprintOf,
} from "./manifest.js";

export interface CertificateState {
  name: string;
  thumbprint: string;
  isVerified: boolean;
  etag: string;
  subject: string;
  /** With export's --include-secrets (the server's includeCertificate). */
  certificate?: string;
}

/** A stored enrollment: as GET shows it, with the attestation as attestationmechanism gives it. */
export interface EnrollmentState {
  body: EnrollmentEntry;
  attestation: Record<string, unknown>;
}

export interface InstanceState {
  name: string;
  exists: boolean;
  etag: string;
  allocationPolicy: string;
  publicNetworkAccess: string;
  ipFilterRules: unknown[];
  /** Connection strings unmasked. */
  hubs: (HubEntry & { name: string })[];
  policies: Required<PolicyEntry>[];
  certificates: CertificateState[];
  groups: Map<string, EnrollmentState>;
  enrollments: Map<string, EnrollmentState>;
}

export type Kind = "instance" | "linkedHub" | "policy" | "certificate" | "enrollmentGroup" | "enrollment";
export type Action = "create" | "update" | "delete";

export interface Change {
  instance: string;
  kind: Kind;
  id: string;
  action: Action;
  /** For updates: `path: before → after`, one line per field that differs. */
  diff: string[];
  /** What to send (creates and updates); undefined for deletes. */
  desired?: unknown;
}

export interface PlanOptions {
  prune: boolean;
  /** The policy the CLI signs with: never pruned, or the rest of the run could not sign. */
  signingPolicy?: string;
}

const READ_ONLY = ["etag", "createdDateTimeUtc", "lastUpdatedDateTimeUtc", "registrationState"];

const sorted = (v: unknown): unknown => {
  if (Array.isArray(v)) return v.map(sorted);
  if (isObject(v)) {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .filter((k) => v[k] !== undefined)
        .map((k) => [k, sorted(v[k])]),
    );
  }
  return v;
};

/** Leaf differences between two JSON values, as `path: before → after` lines. */
export function diffLines(before: unknown, after: unknown, path = ""): string[] {
  if (JSON.stringify(sorted(before)) === JSON.stringify(sorted(after))) return [];
  if (isObject(before) && isObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((k) => diffLines(before[k], after[k], path ? `${path}.${k}` : k));
  }
  const show = (v: unknown) => (v === undefined ? "(unset)" : JSON.stringify(v));
  return [`${path || "(value)"}: ${show(before)} → ${show(after)}`];
}

function thumbprintOfEntry(c: unknown): string | undefined {
  if (!isObject(c)) return undefined;
  if (typeof c.certificate === "string")
    return thumbprintOf(c.certificate, "certificate", (d) => {
      throw new Error(d);
    });
  const info = isObject(c.info) ? c.info : undefined;
  return typeof info?.sha1Thumbprint === "string" ? info.sha1Thumbprint.toUpperCase() : undefined;
}

/** An attestation reduced to what identifies it; keys only when `withKeys`. */
function comparableAttestation(a: unknown, withKeys: boolean): unknown {
  if (!isObject(a)) return a;
  if (a.type === "symmetricKey") {
    const keys = isObject(a.symmetricKey) ? a.symmetricKey : {};
    return withKeys ? { type: a.type, primaryKey: keys.primaryKey, secondaryKey: keys.secondaryKey } : { type: a.type };
  }
  if (a.type === "tpm") return { type: a.type, endorsementKey: isObject(a.tpm) ? a.tpm.endorsementKey : undefined };
  if (a.type === "x509") {
    const x = isObject(a.x509) ? a.x509 : {};
    const pair = (p: unknown) => {
      if (!isObject(p)) return undefined;
      const primary = thumbprintOfEntry(p.primary);
      // The service mirrors a lone primary into secondary (service-api.md §4.3).
      const secondary = thumbprintOfEntry(p.secondary) ?? primary;
      return { primary: primary ?? secondary, secondary };
    };
    return {
      type: a.type,
      clientCertificates: pair(x.clientCertificates),
      signingCertificates: pair(x.signingCertificates),
      caReferences: x.caReferences,
    };
  }
  return a;
}

const keysGiven = (a: unknown): boolean =>
  isObject(a) &&
  isObject(a.symmetricKey) &&
  (typeof a.symmetricKey.primaryKey === "string" || typeof a.symmetricKey.secondaryKey === "string");

/** An enrollment without what the server owns, and without fields at their defaults. */
export function comparableEnrollment(
  e: EnrollmentEntry,
  attestation: unknown,
  withKeys: boolean,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...e };
  for (const k of READ_ONLY) delete out[k];
  out.attestation = comparableAttestation(attestation, withKeys);
  if (out.provisioningStatus === "enabled") delete out.provisioningStatus;
  const rp = out.reprovisionPolicy;
  if (isObject(rp) && rp.updateHubAssignment === true && rp.migrateDeviceData === true) delete out.reprovisionPolicy;
  if (isObject(out.capabilities) && out.capabilities.iotEdge === false) delete out.capabilities;
  if (Array.isArray(out.iotHubs) && out.iotHubs.length === 0) delete out.iotHubs;
  if (isObject(out.initialTwin)) {
    const twin = out.initialTwin;
    const tags = isObject(twin.tags) && Object.keys(twin.tags).length > 0 ? twin.tags : undefined;
    const desired =
      isObject(twin.properties) && isObject(twin.properties.desired) ? twin.properties.desired : undefined;
    const wanted = desired && Object.keys(desired).length > 0 ? desired : undefined;
    if (!tags && !wanted) delete out.initialTwin;
    else out.initialTwin = { ...(tags ? { tags } : {}), ...(wanted ? { properties: { desired: wanted } } : {}) };
  }
  for (const k of Object.keys(out)) if (out[k] === null) delete out[k];
  return out;
}

function planEnrollments(
  instance: string,
  kind: "enrollmentGroup" | "enrollment",
  idField: "enrollmentGroupId" | "registrationId",
  desired: EnrollmentEntry[] | undefined,
  current: Map<string, EnrollmentState>,
  prune: boolean,
): Change[] {
  if (!desired) return [];
  const changes: Change[] = [];
  const wanted = new Set<string>();
  for (const d of desired) {
    const id = String(d[idField]);
    wanted.add(id.toLowerCase());
    const now = current.get(id.toLowerCase());
    if (!now) {
      changes.push({ instance, kind, id, action: "create", diff: [], desired: d });
      continue;
    }
    const withKeys = keysGiven(d.attestation);
    const diff = diffLines(
      comparableEnrollment(now.body, now.attestation, withKeys),
      comparableEnrollment(d, d.attestation, withKeys),
    );
    if (diff.length > 0) changes.push({ instance, kind, id, action: "update", diff, desired: d });
  }
  if (prune) {
    for (const [key, s] of current) {
      if (!wanted.has(key)) changes.push({ instance, kind, id: String(s.body[idField]), action: "delete", diff: [] });
    }
  }
  return changes;
}

const hubComparable = (h: HubEntry, withSecret: boolean) => ({
  location: (h.location ?? "local").replace(/\s+/g, "").toLowerCase(),
  allocationWeight: h.allocationWeight ?? 1,
  applyAllocationPolicy: h.applyAllocationPolicy ?? true,
  ...(withSecret ? { connectionString: h.connectionString } : {}),
});

const masked = (cs: string): boolean => /SharedAccessKey=\*+(;|$)/i.test(cs);

function planHubs(
  instance: string,
  desired: HubEntry[] | undefined,
  current: InstanceState["hubs"],
  prune: boolean,
): Change[] {
  if (!desired) return [];
  const changes: Change[] = [];
  const wanted = new Set(desired.map(hostOfHub));
  for (const d of desired) {
    const id = hostOfHub(d);
    const now = current.find((h) => h.name.toLowerCase() === id);
    if (!now) {
      if (masked(d.connectionString)) {
        throw new Error(
          `${instance}: linked hub ${id} has a masked key; give its connection string (export --include-secrets).`,
        );
      }
      changes.push({ instance, kind: "linkedHub", id, action: "create", diff: [], desired: d });
      continue;
    }
    const secret = !masked(d.connectionString);
    const diff = diffLines(hubComparable(now, secret), hubComparable(d, secret));
    if (diff.length > 0) {
      changes.push({
        instance,
        kind: "linkedHub",
        id,
        action: "update",
        diff: diff.map((l) => l.replace(/SharedAccessKey=[^;"]*/g, "SharedAccessKey=****")),
        desired: d,
      });
    }
  }
  if (prune) {
    for (const h of current) {
      if (!wanted.has(h.name.toLowerCase()))
        changes.push({ instance, kind: "linkedHub", id: h.name, action: "delete", diff: [] });
    }
  }
  return changes;
}

const rightsSet = (text: string): string =>
  text
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((r) => r.toLowerCase())
    .sort()
    .join(",");

function planPolicies(
  instance: string,
  desired: PolicyEntry[] | undefined,
  current: InstanceState["policies"],
  options: PlanOptions,
): Change[] {
  if (!desired) return [];
  const changes: Change[] = [];
  const wanted = new Set(desired.map((p) => p.keyName.toLowerCase()));
  for (const d of desired) {
    const now = current.find((p) => p.keyName.toLowerCase() === d.keyName.toLowerCase());
    if (!now) {
      changes.push({ instance, kind: "policy", id: d.keyName, action: "create", diff: [], desired: d });
      continue;
    }
    const view = (p: PolicyEntry) => ({
      rights: rightsSet(p.rights),
      primaryKey: d.primaryKey ? p.primaryKey : undefined,
      secondaryKey: d.secondaryKey ? p.secondaryKey : undefined,
    });
    // Keys are secrets: the plan says that they change, not what they are.
    const diff = diffLines(view(now), view(d)).map((l) =>
      /^(primary|secondary)Key:/.test(l) ? l.replace(/:.*/, ": changes") : l,
    );
    if (diff.length > 0) changes.push({ instance, kind: "policy", id: d.keyName, action: "update", diff, desired: d });
  }
  if (options.prune) {
    for (const p of current) {
      const signing = options.signingPolicy?.toLowerCase() === p.keyName.toLowerCase();
      if (!wanted.has(p.keyName.toLowerCase()) && !signing) {
        changes.push({ instance, kind: "policy", id: p.keyName, action: "delete", diff: [] });
      }
    }
  }
  return changes;
}

function planCertificates(
  instance: string,
  desired: CertificateEntry[] | undefined,
  current: CertificateState[],
  prune: boolean,
): Change[] {
  if (!desired) return [];
  const changes: Change[] = [];
  const wanted = new Set(desired.map((c) => c.name.toLowerCase()));
  for (const d of desired) {
    const now = current.find((c) => c.name.toLowerCase() === d.name.toLowerCase());
    if (!now) {
      if (!d.certificate) {
        throw new Error(
          `${instance}: CA certificate '${d.name}' needs its PEM ('certificate' or 'certificateFile') to be created.`,
        );
      }
      changes.push({ instance, kind: "certificate", id: d.name, action: "create", diff: [], desired: d });
      continue;
    }
    const diff = diffLines(
      { thumbprint: now.thumbprint, ...(d.verified !== undefined ? { verified: now.isVerified } : {}) },
      { thumbprint: d.thumbprint ?? now.thumbprint, ...(d.verified !== undefined ? { verified: d.verified } : {}) },
    );
    if (diff.length > 0) {
      if (!d.certificate) throw new Error(`${instance}: CA certificate '${d.name}' changes: give its PEM.`);
      changes.push({ instance, kind: "certificate", id: d.name, action: "update", diff, desired: d });
    }
  }
  if (prune) {
    for (const c of current) {
      if (!wanted.has(c.name.toLowerCase()))
        changes.push({ instance, kind: "certificate", id: c.name, action: "delete", diff: [] });
    }
  }
  return changes;
}

function planSettings(d: InstanceEntry, s: InstanceState): Change[] {
  const view = (x: { allocationPolicy?: string; publicNetworkAccess?: string; ipFilterRules?: unknown[] }) => ({
    ...(d.allocationPolicy !== undefined ? { allocationPolicy: x.allocationPolicy?.toLowerCase() } : {}),
    ...(d.publicNetworkAccess !== undefined ? { publicNetworkAccess: x.publicNetworkAccess?.toLowerCase() } : {}),
    ...(d.ipFilterRules !== undefined ? { ipFilterRules: x.ipFilterRules } : {}),
  });
  const diff = diffLines(view(s), view(d));
  return diff.length > 0 && s.exists
    ? [{ instance: d.name, kind: "instance", id: d.name, action: "update", diff, desired: d }]
    : [];
}

/** Every change for one instance, in the order apply makes them. */
export function planInstance(d: InstanceEntry, s: InstanceState, options: PlanOptions): Change[] {
  const name = d.name;
  const created: Change[] = s.exists
    ? []
    : [{ instance: name, kind: "instance", id: name, action: "create", diff: [], desired: d }];
  const enrollments = [
    ...planEnrollments(name, "enrollmentGroup", "enrollmentGroupId", d.enrollmentGroups, s.groups, options.prune),
    ...planEnrollments(name, "enrollment", "registrationId", d.enrollments, s.enrollments, options.prune),
  ];
  const certificates = planCertificates(name, d.certificates, s.certificates, options.prune);
  const notDelete = (c: Change) => c.action !== "delete";
  return [
    ...created,
    ...planSettings(d, s),
    ...planHubs(name, d.linkedHubs, s.hubs, options.prune),
    ...planPolicies(name, d.policies, s.policies, options),
    ...certificates.filter(notDelete),
    ...enrollments.filter(notDelete),
    // Enrollments go before the certificates they may reference.
    ...enrollments.filter((c) => !notDelete(c)),
    ...certificates.filter((c) => !notDelete(c)),
  ];
}

const MARK: Record<Action, string> = { create: "+", update: "~", delete: "-" };

/** The plan as a person reads it. */
export function formatPlan(changes: Change[]): string {
  if (changes.length === 0) return "No changes: the server already matches the file.\n";
  const lines: string[] = [];
  let instance = "";
  for (const c of changes) {
    if (c.instance !== instance) {
      instance = c.instance;
      lines.push(`provisioning service ${instance}:`);
    }
    lines.push(`  ${MARK[c.action]} ${c.action} ${c.kind} ${c.id}`);
    for (const d of c.diff) lines.push(`      ${d}`);
  }
  const count = (a: Action) => changes.filter((c) => c.action === a).length;
  lines.push(`Plan: ${count("create")} to create, ${count("update")} to update, ${count("delete")} to delete.`);
  return `${lines.join("\n")}\n`;
}
