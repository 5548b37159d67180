// The servers under test, as child processes: a real `provisio serve` on a temp data dir with
// OS-chosen ports, and the baselines (bench/baseline-server.ts for HTTPS, bench/baseline-mqtt-server.ts
// for MQTT) on the same key and certificate. Plus the service/management API calls the scenarios
// need before timing (enrollment groups, a CA certificate).
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:https";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createSasToken } from "../src/attestation/sas-token.js";
import { parseConnectionString } from "../src/domain/connection-string.js";
import type { ServeInfo } from "../src/server.js";

const here = dirname(fileURLToPath(import.meta.url)); // dist/bench
export const ROOT = resolve(here, "../..");
const BIN = join(ROOT, "bin", "provisio.js");

export interface ServerChild {
  child: ChildProcess;
  /** The last 64 KB the process wrote (stdout and stderr), for failure messages and the report. */
  output(): string;
  /** SIGTERM and wait for the exit (SIGKILL after 15 s); resolves to the exit code. */
  stop(): Promise<number | null>;
}

function track(child: ChildProcess): ServerChild {
  let output = "";
  const keep = (d: Buffer) => {
    output = (output + d.toString()).slice(-65_536);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = once(child, "exit").then(([code]) => code as number | null);
  return {
    child,
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

export interface Provisio extends ServerChild {
  dataDir: string;
  info: ServeInfo;
  caPem: string;
}

/** `provisio serve` on `dataDir`, bound to 127.0.0.1; resolves once provisio.json exists. */
export async function startProvisio(
  dataDir: string,
  nodeArgs: string[] = [],
  env: Record<string, string> = {},
): Promise<Provisio> {
  const infoFile = join(dataDir, "provisio.json");
  const child = spawn(
    process.execPath,
    [
      ...nodeArgs,
      BIN,
      "serve",
      "--data-dir",
      dataDir,
      "--bind",
      "127.0.0.1",
      "--https-port",
      "0",
      "--mqtt-port",
      "0",
      "--amqp-port",
      "0",
      "--metrics-port",
      "0",
    ],
    { env: { ...process.env, PROVISIO_LOG_LEVEL: "warn", ...env }, stdio: ["ignore", "pipe", "pipe"] },
  );
  const tracked = track(child);
  const deadline = Date.now() + 30_000;
  while (!existsSync(infoFile)) {
    if (child.exitCode !== null) throw new Error(`provisio serve exited with ${child.exitCode}: ${tracked.output()}`);
    if (Date.now() > deadline) {
      await tracked.stop();
      throw new Error(`provisio serve did not write provisio.json within 30 s: ${tracked.output()}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  const info = JSON.parse(readFileSync(infoFile, "utf8")) as ServeInfo;
  return { ...tracked, dataDir, info, caPem: readFileSync(info.caFile, "utf8") };
}

/** Baseline servers: bare HTTPS (also for mutual TLS), bare MQTT and bare AMQP over TLS. */
export type BaselineKind = "https" | "mqtt" | "amqp";
const BASELINE_SCRIPTS: Record<BaselineKind, string> = {
  https: "baseline-server.js",
  mqtt: "baseline-mqtt-server.js",
  amqp: "baseline-amqp-server.js",
};

/**
 * A baseline server on provisio's TLS material; resolves to it and its port. `trustFile` (HTTPS
 * only) makes it verify client chains up to the certificates in that PEM file.
 */
export async function startBaseline(
  dataDir: string,
  nodeArgs: string[] = [],
  kind: BaselineKind = "https",
  trustFile?: string,
): Promise<ServerChild & { port: number }> {
  const args = [...nodeArgs, join(here, BASELINE_SCRIPTS[kind]), dataDir, ...(trustFile ? [trustFile] : [])];
  const child = spawn(process.execPath, args, {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const tracked = track(child);
  const port = await new Promise<number>((done, fail) => {
    let line = "";
    const timer = setTimeout(() => fail(new Error(`baseline server did not start: ${tracked.output()}`)), 15_000);
    const onData = (d: Buffer) => {
      line += d.toString();
      const nl = line.indexOf("\n");
      if (nl < 0) return;
      clearTimeout(timer);
      child.stdout?.off("data", onData);
      done((JSON.parse(line.slice(0, nl)) as { port: number }).port);
    };
    child.stdout?.on("data", onData);
    child.once("exit", (code) => fail(new Error(`baseline server exited with ${code}: ${tracked.output()}`)));
  });
  return { ...tracked, port };
}

/** One service/management API call with the service connection string's SAS; resolves to status and text. */
export async function serviceCall(
  p: Provisio,
  method: string,
  path: string,
  body: unknown,
): Promise<{ status: number; text: string }> {
  const cs = parseConnectionString(p.info.serviceConnectionString);
  if (!cs) throw new Error("provisio.json has an unreadable serviceConnectionString");
  const text = JSON.stringify(body);
  return new Promise<{ status: number; text: string }>((done, fail) => {
    const req = request(
      {
        host: "127.0.0.1",
        port: p.info.ports.https,
        servername: cs.hostName,
        ca: p.caPem,
        agent: false,
        method,
        path,
        headers: {
          host: cs.hostName,
          authorization: createSasToken(cs.key, cs.hostName, Math.floor(Date.now() / 1000) + 3600, cs.keyName),
          "content-type": "application/json; charset=utf-8",
          "content-length": String(Buffer.byteLength(text)),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => done({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
      },
    );
    req.on("error", fail);
    req.end(text);
  });
}

/** PUT an enrollment group; resolves to the stored group's text. */
async function putEnrollmentGroup(p: Provisio, groupId: string, attestation: unknown): Promise<string> {
  const path = `/enrollmentGroups/${groupId}?api-version=2021-10-01`;
  const reply = await serviceCall(p, "PUT", path, { enrollmentGroupId: groupId, attestation });
  if (reply.status !== 200 && reply.status !== 201) {
    throw new Error(`PUT /enrollmentGroups/${groupId}: HTTP ${reply.status} ${reply.text}`);
  }
  return reply.text;
}

/**
 * Create (or replace) a symmetric-key enrollment group through the service API; resolves to its
 * generated primary key. The built-in hub is already linked, so its devices can be assigned.
 */
export async function createEnrollmentGroup(p: Provisio, groupId: string): Promise<string> {
  const text = await putEnrollmentGroup(p, groupId, { type: "symmetricKey" });
  const group = JSON.parse(text) as { attestation?: { symmetricKey?: { primaryKey?: string } } };
  const key = group.attestation?.symmetricKey?.primaryKey;
  if (!key) throw new Error(`PUT /enrollmentGroups/${groupId} returned no primaryKey: ${text}`);
  return key;
}

/**
 * Upload `rootPem` as a verified CA certificate of the primary instance (management.md §5), then
 * create an X.509 enrollment group whose signing certificate is `intermediatePem`: devices that
 * present `leaf + intermediate` chain up to the verified root.
 */
export async function createX509EnrollmentGroup(
  p: Provisio,
  groupId: string,
  certificateName: string,
  rootPem: string,
  intermediatePem: string,
): Promise<void> {
  const path = `/provisioningServices/provisio/certificates/${certificateName}`;
  const upload = await serviceCall(p, "PUT", path, { certificate: rootPem, isVerified: true });
  if (upload.status !== 200 && upload.status !== 201) {
    throw new Error(`PUT ${path}: HTTP ${upload.status} ${upload.text}`);
  }
  await putEnrollmentGroup(p, groupId, {
    type: "x509",
    x509: { signingCertificates: { primary: { certificate: intermediatePem } } },
  });
}

export const removeDir = (dir: string): void => rmSync(dir, { recursive: true, force: true });
