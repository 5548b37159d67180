// Simulated X.509 group devices registering over HTTPS (device-api.md §4.3, §5): each device
// presents its own leaf (CN = registration id) plus the group's intermediate in a fresh MUTUAL
// TLS handshake and sends `PUT …/register` without an Authorization header.
//
// Certificates (ECDSA P-256, src/security/cert-factory): issuing one costs ≈ 5-13 ms of CPU, so
// they are cached on disk, under the OS temp dir: the root and intermediate CA in `ca.json`, the
// leaves in `leaves-{intermediate SHA-1}/{registrationId}.pem`. A run reuses what an earlier one
// left (the registration ids do not depend on the run: every run has a fresh provisio data dir)
// and the generator threads issue what is missing while a measurement is prepared, before its
// clock starts. The CA is renewed, and the old leaves removed, when it is older than CA_MAX_AGE_DAYS.
// BENCH_X509_CACHE=0 (bench/run.ts) issues everything afresh and keeps nothing.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createSecureContext, type SecureContext } from "node:tls";
import type { HttpsDevice, HttpsEndpoint } from "../src/load/https-device.js";
import { prepareHttpsDevice } from "../src/load/https-device.js";
import { BENCH_HOST } from "./load.js";

/** What a worker needs to build X.509 devices. */
export interface X509Spec {
  idScope: string;
  /** Registration ids are `bench-x509-{run}-{i}` for i in `indices`. */
  run: string;
  indices: number[];
  /** The issuing CA of the device certificates (the group's signing certificate). */
  issuer: { certPem: string; keyPem: string };
  /** Where issued leaves are kept between runs; undefined: not kept. */
  leavesDir?: string;
}

/** A device and its own TLS client context (trust + its certificate chain and key). */
export interface X509Device {
  device: HttpsDevice;
  target: HttpsEndpoint;
}

/** The bench's CA pair: a root (uploaded as verified) and the intermediate that signs the leaves. */
export interface BenchCa {
  rootPem: string;
  intermediate: { certPem: string; keyPem: string };
  /** Where this intermediate's leaves are cached; undefined without a cache. */
  leavesDir?: string;
  /** True when the CA came from the cache. */
  reused: boolean;
}

const CA_MAX_AGE_DAYS = 30;
const DAY_MS = 24 * 3600_000;

interface CaFile {
  created: number;
  rootPem: string;
  intermediateCertPem: string;
  intermediateKeyPem: string;
  /** SHA-1 (hex) of the intermediate: names its leaves directory. */
  intermediateSha1: string;
}

/** Write via a temporary file and a rename, so a concurrent run never reads half a file. */
function writeAtomically(file: string, text: string): void {
  const temp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  writeFileSync(temp, text, { mode: 0o600 });
  renameSync(temp, file);
}

function readCaFile(file: string): CaFile | undefined {
  try {
    const ca = JSON.parse(readFileSync(file, "utf8")) as Partial<CaFile>;
    if (
      typeof ca.created === "number" &&
      typeof ca.rootPem === "string" &&
      typeof ca.intermediateCertPem === "string" &&
      typeof ca.intermediateKeyPem === "string" &&
      typeof ca.intermediateSha1 === "string" &&
      /^[0-9A-F]{40}$/.test(ca.intermediateSha1)
    ) {
      return ca as CaFile;
    }
  } catch {
    // missing or unreadable: a new one is made
  }
  return undefined;
}

/** The CA pair from `cacheDir` (created there when missing or stale); without `cacheDir`, a new one. */
export async function benchCa(cacheDir: string | undefined): Promise<BenchCa> {
  const caFile = cacheDir ? join(cacheDir, "ca.json") : undefined;
  const cached = caFile ? readCaFile(caFile) : undefined;
  if (cacheDir && cached && Date.now() - cached.created < CA_MAX_AGE_DAYS * DAY_MS) {
    const leavesDir = join(cacheDir, `leaves-${cached.intermediateSha1}`);
    mkdirSync(leavesDir, { recursive: true, mode: 0o700 });
    return {
      rootPem: cached.rootPem,
      intermediate: { certPem: cached.intermediateCertPem, keyPem: cached.intermediateKeyPem },
      leavesDir,
      reused: true,
    };
  }
  // Loaded only here: @peculiar/x509 and reflect-metadata are not small.
  const factory = await import("../src/security/cert-factory.js");
  const root = await factory.createRootCa("Provisio Bench Root");
  const intermediate = await factory.createIntermediateCa(root, "Provisio Bench Intermediate");
  const ca: BenchCa = {
    rootPem: root.certPem,
    intermediate: { certPem: intermediate.certPem, keyPem: intermediate.keyPem },
    reused: false,
  };
  if (!cacheDir || !caFile) return ca;
  // Leaves of an older CA go (only what this module wrote: `leaves-*`; ca.json is replaced).
  if (existsSync(cacheDir)) {
    for (const entry of readdirSync(cacheDir)) {
      if (entry.startsWith("leaves-")) rmSync(join(cacheDir, entry), { recursive: true, force: true });
    }
  }
  const leavesDir = join(cacheDir, `leaves-${intermediate.sha1}`);
  mkdirSync(leavesDir, { recursive: true, mode: 0o700 });
  const file: CaFile = {
    created: Date.now(),
    rootPem: root.certPem,
    intermediateCertPem: intermediate.certPem,
    intermediateKeyPem: intermediate.keyPem,
    intermediateSha1: intermediate.sha1,
  };
  writeAtomically(caFile, JSON.stringify(file));
  return { ...ca, leavesDir };
}

/**
 * Client contexts (the server CA pem as trust, the leaf + intermediate chain, the leaf key) of the
 * leaves this thread holds, by registration id. Both servers use provisio's CA and certificate.
 */
const held = new Map<string, SecureContext>();
/** Concurrent certificate issues per thread: enough to overlap the awaits, no flood. */
const ISSUE_PARALLELISM = 8;

/** Forget the leaves this thread holds (end of the scenario). */
export function forgetX509Devices(): void {
  held.clear();
}

/** A cached leaf: its certificate and key PEM, concatenated; undefined if absent or unreadable. */
function readLeaf(file: string): { certPem: string; keyPem: string } | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
  const at = text.indexOf("-----BEGIN PRIVATE KEY-----");
  if (at <= 0 || !text.startsWith("-----BEGIN CERTIFICATE-----")) return undefined;
  return { certPem: text.slice(0, at), keyPem: text.slice(at) };
}

/**
 * The devices of `spec`, reading the missing leaves from the cache or issuing them.
 * `port`: the server they will dial; `caPem`: what they trust. Resolves to the devices and how
 * many leaves were issued (not found in the cache).
 */
export async function prepareX509Devices(
  spec: X509Spec,
  port: number,
  caPem: string,
): Promise<{ devices: X509Device[]; issued: number }> {
  const ids = spec.indices.map((i) => `bench-x509-${spec.run}-${i}`);
  const hold = (id: string, leaf: { certPem: string; keyPem: string }) =>
    // Leaf first, then the intermediate: what the SDK sends with a `leaf + intermediate` PEM.
    held.set(id, createSecureContext({ ca: caPem, cert: leaf.certPem + spec.issuer.certPem, key: leaf.keyPem }));
  const missing: string[] = [];
  for (const id of ids) {
    if (held.has(id)) continue;
    const leaf = spec.leavesDir ? readLeaf(join(spec.leavesDir, `${id}.pem`)) : undefined;
    if (leaf) hold(id, leaf);
    else missing.push(id);
  }
  if (missing.length > 0) {
    const factory = await import("../src/security/cert-factory.js");
    const issuer = await factory.loadIssuer(spec.issuer.certPem, spec.issuer.keyPem);
    const leavesDir = spec.leavesDir !== undefined && existsSync(spec.leavesDir) ? spec.leavesDir : undefined;
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < missing.length) {
        const id = missing[next++];
        if (id === undefined) break;
        const leaf = await factory.createDeviceCertificate(issuer, id);
        hold(id, leaf);
        if (leavesDir) writeAtomically(join(leavesDir, `${id}.pem`), leaf.certPem + leaf.keyPem);
      }
    };
    await Promise.all(Array.from({ length: ISSUE_PARALLELISM }, lane));
  }
  const devices = ids.map((registrationId) => {
    const secureContext = held.get(registrationId);
    if (!secureContext) throw new Error(`no certificate for ${registrationId}`);
    return {
      device: prepareHttpsDevice({ idScope: spec.idScope, registrationId }, "localhost"),
      target: { ...BENCH_HOST, port, secureContext },
    };
  });
  return { devices, issued: missing.length };
}
