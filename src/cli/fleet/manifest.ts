// The declarative fleet file of `provisio apply` and `provisio export`: provisioning service
// instances with their settings, linked hubs, access policies, CA certificates, enrollment groups
// and individual enrollments. Enrollments are written as the service API shows them (service-api.md
// §4), so a GET's JSON pastes in. YAML or JSON; one file or a folder of them, merged by instance.
import { X509Certificate } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, extname, join, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { isObject } from "../../domain/json.js";

export interface HubEntry {
  connectionString: string;
  location?: string;
  allocationWeight?: number;
  applyAllocationPolicy?: boolean;
}

export interface PolicyEntry {
  keyName: string;
  rights: string;
  primaryKey?: string;
  secondaryKey?: string;
}

export interface CertificateEntry {
  name: string;
  /** PEM text; or `certificateFile`, read relative to the manifest when loaded. */
  certificate?: string;
  certificateFile?: string;
  /** Upload as verified (self-attested, management.md §5.1). */
  verified?: boolean;
  /** Written by export without the PEM; enough to recognise the certificate, not to create it. */
  thumbprint?: string;
  subject?: string;
}

/** An enrollment or enrollment group in the service API's shape. */
export type EnrollmentEntry = Record<string, unknown>;

export interface InstanceEntry {
  name: string;
  location?: string;
  allocationPolicy?: string;
  publicNetworkAccess?: string;
  ipFilterRules?: unknown[];
  /** Each kind is managed only when listed: an absent list leaves that kind as it is, even with --prune. */
  linkedHubs?: HubEntry[];
  policies?: PolicyEntry[];
  certificates?: CertificateEntry[];
  enrollmentGroups?: EnrollmentEntry[];
  enrollments?: EnrollmentEntry[];
}

export interface Manifest {
  provisioningServices: InstanceEntry[];
}

const LISTS = ["linkedHubs", "policies", "certificates", "enrollmentGroups", "enrollments"] as const;
const SETTINGS = ["name", "location", "allocationPolicy", "publicNetworkAccess", "ipFilterRules"];

/** A checked manifest from parsed YAML/JSON; `where` names the file in messages. */
export function parseManifest(value: unknown, where: string, baseDir: string): Manifest {
  const fail = (detail: string): never => {
    throw new Error(`${where}: ${detail}`);
  };
  if (!isObject(value) || !Array.isArray(value.provisioningServices)) {
    return fail("expected an object with a 'provisioningServices' list (see 'provisio export').");
  }
  const instances = value.provisioningServices.map((raw, i): InstanceEntry => {
    const at = `provisioningServices[${i}]`;
    if (!isObject(raw) || typeof raw.name !== "string" || raw.name === "") return fail(`${at}.name is required.`);
    for (const key of Object.keys(raw)) {
      if (!SETTINGS.includes(key) && !(LISTS as readonly string[]).includes(key)) {
        fail(`${at}: unknown field '${key}' (known: ${[...SETTINGS, ...LISTS].join(", ")}).`);
      }
    }
    const entry: InstanceEntry = { name: raw.name };
    for (const key of ["location", "allocationPolicy", "publicNetworkAccess"] as const) {
      const v = raw[key];
      if (v !== undefined && typeof v !== "string") fail(`${at}.${key} must be text.`);
      if (typeof v === "string") entry[key] = v;
    }
    if (raw.ipFilterRules !== undefined) {
      if (!Array.isArray(raw.ipFilterRules)) fail(`${at}.ipFilterRules must be a list.`);
      entry.ipFilterRules = raw.ipFilterRules as unknown[];
    }
    for (const list of LISTS) {
      const v = raw[list];
      if (v === undefined || v === null) continue;
      if (!Array.isArray(v) || !v.every(isObject)) fail(`${at}.${list} must be a list of objects.`);
    }
    if (raw.linkedHubs)
      entry.linkedHubs = (raw.linkedHubs as Record<string, unknown>[]).map((h, j) =>
        hubEntry(h, `${at}.linkedHubs[${j}]`, fail),
      );
    if (raw.policies)
      entry.policies = (raw.policies as Record<string, unknown>[]).map((p, j) =>
        policyEntry(p, `${at}.policies[${j}]`, fail),
      );
    if (raw.certificates) {
      entry.certificates = (raw.certificates as Record<string, unknown>[]).map((c, j) =>
        certificateEntry(c, `${at}.certificates[${j}]`, baseDir, fail),
      );
    }
    if (raw.enrollmentGroups) {
      entry.enrollmentGroups = (raw.enrollmentGroups as Record<string, unknown>[]).map((e, j) =>
        enrollmentEntry(e, "enrollmentGroupId", `${at}.enrollmentGroups[${j}]`, baseDir, fail),
      );
    }
    if (raw.enrollments) {
      entry.enrollments = (raw.enrollments as Record<string, unknown>[]).map((e, j) =>
        enrollmentEntry(e, "registrationId", `${at}.enrollments[${j}]`, baseDir, fail),
      );
    }
    for (const [list, key] of [
      ["linkedHubs", (h: HubEntry) => hostOfHub(h)],
      ["policies", (p: PolicyEntry) => p.keyName],
      ["certificates", (c: CertificateEntry) => c.name],
      ["enrollmentGroups", (e: EnrollmentEntry) => String(e.enrollmentGroupId)],
      ["enrollments", (e: EnrollmentEntry) => String(e.registrationId)],
    ] as const) {
      const items = (entry[list] ?? []) as never[];
      const seen = new Set<string>();
      for (const item of items) {
        const k = (key as (x: never) => string)(item).toLowerCase();
        if (seen.has(k)) fail(`${at}.${list} lists '${k}' twice.`);
        seen.add(k);
      }
    }
    return entry;
  });
  return { provisioningServices: instances };
}

export const hostOfHub = (h: HubEntry): string =>
  /HostName=([^;]+)/i.exec(h.connectionString)?.[1]?.toLowerCase() ?? "";

function hubEntry(h: Record<string, unknown>, at: string, fail: (d: string) => never): HubEntry {
  if (typeof h.connectionString !== "string" || !/HostName=[^;]+/i.test(h.connectionString)) {
    fail(`${at}.connectionString is required: HostName=...;SharedAccessKeyName=...;SharedAccessKey=...`);
  }
  const out: HubEntry = { connectionString: h.connectionString as string };
  if (h.location !== undefined) out.location = String(h.location);
  if (h.allocationWeight !== undefined) {
    if (typeof h.allocationWeight !== "number") fail(`${at}.allocationWeight must be a number from 1 to 1000.`);
    out.allocationWeight = h.allocationWeight as number;
  }
  if (h.applyAllocationPolicy !== undefined) {
    if (typeof h.applyAllocationPolicy !== "boolean") fail(`${at}.applyAllocationPolicy must be true or false.`);
    out.applyAllocationPolicy = h.applyAllocationPolicy as boolean;
  }
  return out;
}

function policyEntry(p: Record<string, unknown>, at: string, fail: (d: string) => never): PolicyEntry {
  if (typeof p.keyName !== "string" || p.keyName === "") fail(`${at}.keyName is required.`);
  if (typeof p.rights !== "string" || p.rights === "")
    fail(`${at}.rights is required, e.g. "EnrollmentRead, EnrollmentWrite".`);
  return {
    keyName: p.keyName as string,
    rights: p.rights as string,
    ...(typeof p.primaryKey === "string" ? { primaryKey: p.primaryKey } : {}),
    ...(typeof p.secondaryKey === "string" ? { secondaryKey: p.secondaryKey } : {}),
  };
}

function readRelative(baseDir: string, file: string, at: string, fail: (d: string) => never): string {
  try {
    return readFileSync(resolve(baseDir, file), "utf8").trim();
  } catch (err) {
    return fail(`${at}: cannot read ${file}: ${(err as Error).message}`);
  }
}

function certificateEntry(
  c: Record<string, unknown>,
  at: string,
  baseDir: string,
  fail: (d: string) => never,
): CertificateEntry {
  if (typeof c.name !== "string" || c.name === "") fail(`${at}.name is required.`);
  const out: CertificateEntry = { name: c.name as string };
  if (typeof c.certificateFile === "string") out.certificate = readRelative(baseDir, c.certificateFile, at, fail);
  else if (typeof c.certificate === "string") out.certificate = c.certificate.trim();
  if (typeof c.verified === "boolean") out.verified = c.verified;
  if (typeof c.thumbprint === "string") out.thumbprint = c.thumbprint.toUpperCase();
  if (typeof c.subject === "string") out.subject = c.subject;
  if (!out.certificate && !out.thumbprint) fail(`${at} needs 'certificate' (PEM) or 'certificateFile'.`);
  if (out.certificate) out.thumbprint = thumbprintOf(out.certificate, at, fail);
  return out;
}

/** SHA-1 of a PEM or base64 DER certificate, upper-case hex as DPS shows it. */
export function thumbprintOf(text: string, at: string, fail: (d: string) => never): string {
  try {
    const cert = new X509Certificate(text.includes("-----BEGIN") ? text : Buffer.from(text, "base64"));
    return cert.fingerprint.replace(/:/g, "").toUpperCase();
  } catch {
    return fail(`${at}: not an X.509 certificate.`);
  }
}

/** An enrollment: the id required; `certificateFile` in an X.509 entry read into `certificate`. */
function enrollmentEntry(
  e: Record<string, unknown>,
  idField: "registrationId" | "enrollmentGroupId",
  at: string,
  baseDir: string,
  fail: (d: string) => never,
): EnrollmentEntry {
  if (typeof e[idField] !== "string" || e[idField] === "") fail(`${at}.${idField} is required.`);
  if (!isObject(e.attestation) || typeof e.attestation.type !== "string") {
    fail(`${at}.attestation.type is required: symmetricKey, x509 or tpm.`);
  }
  const copy = structuredClone(e);
  const x509 = isObject(copy.attestation) && isObject(copy.attestation.x509) ? copy.attestation.x509 : undefined;
  for (const field of ["clientCertificates", "signingCertificates"]) {
    const pair = x509?.[field];
    if (!isObject(pair)) continue;
    for (const slot of ["primary", "secondary"]) {
      const c = pair[slot];
      if (isObject(c) && typeof c.certificateFile === "string") {
        c.certificate = readRelative(baseDir, c.certificateFile, `${at}.attestation.x509.${field}.${slot}`, fail);
        delete c.certificateFile;
      }
    }
  }
  return copy;
}

/** Read a manifest file or every .yaml/.yml/.json file of a folder (sorted), merged by instance. */
export function loadManifest(path: string): Manifest {
  let files: string[];
  try {
    files = statSync(path).isDirectory()
      ? readdirSync(path)
          .filter((f) => [".yaml", ".yml", ".json"].includes(extname(f).toLowerCase()))
          .sort()
          .map((f) => join(path, f))
      : [path];
  } catch (err) {
    throw new Error(`Cannot read ${path}: ${(err as Error).message}`);
  }
  if (files.length === 0) throw new Error(`${path} holds no .yaml, .yml or .json file.`);
  const parts = files.map((file) => {
    let value: unknown;
    try {
      const text = readFileSync(file, "utf8");
      value = extname(file).toLowerCase() === ".json" ? JSON.parse(text) : parseYaml(text);
    } catch (err) {
      throw new Error(`${file}: ${(err as Error).message}`);
    }
    return parseManifest(value, file, dirname(file));
  });
  return mergeManifests(parts);
}

/** Files of a folder merged: an instance in several files has their lists joined. */
export function mergeManifests(parts: Manifest[]): Manifest {
  const byName = new Map<string, InstanceEntry>();
  for (const part of parts) {
    for (const entry of part.provisioningServices) {
      const key = entry.name.toLowerCase();
      const seen = byName.get(key);
      if (!seen) {
        byName.set(key, structuredClone(entry));
        continue;
      }
      for (const list of LISTS) {
        const more = entry[list];
        if (more) (seen as unknown as Record<string, unknown>)[list] = [...((seen[list] ?? []) as unknown[]), ...more];
      }
      for (const s of ["location", "allocationPolicy", "publicNetworkAccess", "ipFilterRules"] as const) {
        if (entry[s] !== undefined) (seen as unknown as Record<string, unknown>)[s] = entry[s];
      }
    }
  }
  const merged = { provisioningServices: [...byName.values()] };
  // Duplicates across files are caught as within one.
  return parseManifest(merged, "the merged files", ".");
}
