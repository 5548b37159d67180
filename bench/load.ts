// The load generator's core: simulated devices registering over HTTPS (device-api.md §5), each
// request on a fresh TLS connection, at most `concurrency` devices in flight. Runs inside a
// worker thread (bench/load-worker.ts); the same code drives provisio and the baseline server.
// runLoad is protocol-neutral: bench/load-mqtt.ts, load-amqp.ts and load-x509.ts plug in their devices.
import { randomUUID } from "node:crypto";
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import { type RequestOptions, request } from "node:https";
import { performance } from "node:perf_hooks";
import type { SecureContext } from "node:tls";
import { createSasToken } from "../src/attestation/sas-token.js";
import { deriveDeviceKey } from "../src/attestation/symmetric-key.js";

export const API_VERSION = "2019-03-31";
/** The SDK's per-request timeout (device-api.md §2). */
export const REQUEST_TIMEOUT_MS = 30_000;
/** Polls per device before the bench calls it a failure (the SDK would poll forever). */
export const MAX_POLLS = 30;

/** One device's precomputed register request. */
export interface Device {
  registrationId: string;
  /** `{idScope}/registrations/{registrationId}`: the SAS resource and the path prefix. */
  resource: string;
  path: string;
  headers: OutgoingHttpHeaders;
  body: Buffer;
}

/** What a prepared worker needs to build its devices: the ids and how to sign for them. */
export interface DeviceSpec {
  idScope: string;
  groupKey: string;
  /** Registration ids are `bench-dev-{run}-{i}` for i in `indices`. */
  run: string;
  indices: number[];
}

/** Build each device's request ahead of timing: derived key, SAS token, headers and body. */
export function prepareDevices(spec: DeviceSpec): Device[] {
  const se = Math.floor(Date.now() / 1000) + 3600;
  return spec.indices.map((i) => {
    const registrationId = `bench-dev-${spec.run}-${i}`;
    const sr = `${spec.idScope}/registrations/${registrationId}`;
    const key = deriveDeviceKey(spec.groupKey, registrationId);
    const body = Buffer.from(JSON.stringify({ registrationId }), "utf8");
    return {
      registrationId,
      resource: sr,
      path: `/${sr}/register?api-version=${API_VERSION}`,
      // The headers the Azure device SDK 1.9.1 sends (device-api.md §5.1), Request-Id aside.
      headers: {
        Accept: "application/json",
        "Content-Type": "application/json; charset=utf-8",
        Authorization: createSasToken(key, sr, se, "registration"),
        "User-Agent": "azure-iot-provisioning-device/1.9.1",
        "Content-Length": String(body.length),
        Host: "localhost",
      },
      body,
    };
  });
}

export interface Target {
  /** Always 127.0.0.1: the bench dials nothing else. */
  port: number;
  secureContext: SecureContext;
  /** Set (to the CA pem) to pass `ca` on every request instead of the shared context. */
  caPerConnection?: string;
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

/** One request on its own TLS connection (`agent: false`: no keep-alive, no session reuse). */
function send(target: Target, method: string, path: string, headers: OutgoingHttpHeaders, body: Buffer) {
  return new Promise<Reply>((resolve, reject) => {
    const options: RequestOptions & { secureContext?: SecureContext } = {
      host: "127.0.0.1",
      port: target.port,
      servername: "localhost",
      method,
      path,
      headers: { ...headers, "Request-Id": randomUUID() },
      agent: false,
      timeout: REQUEST_TIMEOUT_MS,
    };
    // A context built once from the CA pem is the same trust as `ca`, without re-parsing the pem
    // for every connection (tls.connect accepts it; @types/node's RequestOptions does not list it).
    if (target.caPerConnection) options.ca = target.caPerConnection;
    else options.secureContext = target.secureContext;
    const req = request(options, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString("utf8") }),
      );
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    req.on("error", reject);
    req.end(body);
  });
}

/** The fields of a register or poll answer the load generators look at. */
export interface OperationBody {
  status?: unknown;
  operationId?: unknown;
  errorCode?: unknown;
  message?: unknown;
  registrationState?: { errorCode?: unknown; errorMessage?: unknown };
}

/** A JSON object answer, or undefined for anything else. */
export const parseOperation = (text: string): OperationBody | undefined => {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === "object" && v !== null ? (v as OperationBody) : undefined;
  } catch {
    return undefined;
  }
};

/** Ids, uuids and times masked, so that failures of one kind group together. */
export const generic = (text: string): string =>
  text
    .replace(/bench-(dev|mqtt|amqp|x509)-[\w.-]+/g, "bench-$1-…")
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, "<uuid>")
    .replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, "<time>")
    .slice(0, 200);

/**
 * Why a device did not end `assigned`: short, groupable text. `head` names the step and the
 * transport's status; `raw` is the answer as received, shown when it is no operation.
 */
export function describeFailure(head: string, body: OperationBody | undefined, raw: string): string {
  if (body?.errorCode !== undefined) return generic(`${head} ${String(body.errorCode)} ${String(body.message ?? "")}`);
  const state = body?.registrationState;
  if (body?.status !== undefined) {
    const error =
      state?.errorCode !== undefined ? ` ${String(state.errorCode)} ${String(state.errorMessage ?? "")}` : "";
    return generic(`${head} status=${String(body.status)}${error}`);
  }
  return generic(`${head} ${raw}`);
}

const describe = (reply: Reply, body: OperationBody | undefined, step: string): string =>
  describeFailure(`${step}: HTTP ${reply.status}`, body, reply.text);

const POLL_BODY = Buffer.from("{}", "utf8");

/** How one device's registration ended. */
export type Outcome = { ok: true; polls: number } | { ok: false; why: string };

/** Register one device, polling (each poll on a fresh connection) until it is no longer assigning. */
export async function registerOne(target: Target, d: Device): Promise<Outcome> {
  let reply = await send(target, "PUT", d.path, d.headers, d.body);
  let body = parseOperation(reply.text);
  let polls = 0;
  while ((reply.status === 200 || reply.status === 202) && body?.status === "assigning") {
    if (typeof body.operationId !== "string") return { ok: false, why: describe(reply, body, "register") };
    if (polls >= MAX_POLLS) return { ok: false, why: `still assigning after ${MAX_POLLS} polls` };
    const retryAfter = Number(reply.headers["retry-after"] ?? 2); // the SDK's default is 2 s
    await new Promise((r) => setTimeout(r, (Number.isFinite(retryAfter) ? retryAfter : 2) * 1000));
    polls++;
    const path = `/${d.resource}/operations/${body.operationId}?api-version=${API_VERSION}`;
    reply = await send(target, "GET", path, { ...d.headers, "Content-Length": "2" }, POLL_BODY);
    body = parseOperation(reply.text);
  }
  if (reply.status === 200 && body?.status === "assigned") return { ok: true, polls };
  return { ok: false, why: describe(reply, body, polls > 0 ? "poll" : "register") };
}

export interface LoadResult {
  /** Latency of every device that ended `assigned`, ms. */
  latencies: Float64Array;
  failures: Record<string, number>;
  /** Devices never started because the time limit came first (counted as failures too). */
  notStarted: number;
  polls: number;
  /** Epoch ms (performance.timeOrigin + now), comparable across threads. */
  startedAt: number;
  endedAt: number;
}

const epochNow = (): number => performance.timeOrigin + performance.now();

/**
 * Drive `devices` through `register` with at most `concurrency` in flight. Stops starting new
 * devices at `deadline` (epoch ms); those count as failures. A rejection is a network failure.
 */
export async function runLoad<D>(
  devices: readonly D[],
  register: (d: D) => Promise<Outcome>,
  concurrency: number,
  deadline: number,
): Promise<LoadResult> {
  const latencies = new Float64Array(devices.length);
  let ok = 0;
  let polls = 0;
  let notStarted = 0;
  const failures: Record<string, number> = {};
  let next = 0;
  const startedAt = epochNow();
  const lane = async (): Promise<void> => {
    while (next < devices.length) {
      const d = devices[next++];
      if (d === undefined) break;
      if (Date.now() > deadline) {
        notStarted++;
        continue;
      }
      const t0 = performance.now();
      try {
        const r = await register(d);
        if (r.ok) {
          latencies[ok++] = performance.now() - t0;
          polls += r.polls;
        } else {
          failures[r.why] = (failures[r.why] ?? 0) + 1;
        }
      } catch (err) {
        const why = `network: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
        failures[why] = (failures[why] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, lane));
  const endedAt = epochNow();
  if (notStarted > 0) failures["not started: time limit"] = notStarted;
  return { latencies: latencies.slice(0, ok), failures, notStarted, polls, startedAt, endedAt };
}
