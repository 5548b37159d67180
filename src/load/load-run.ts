// The load generator's core, shared by `npm run bench` (bench/) and `provisio device simulate`:
// simulated devices, each registering on its own connection (https-device.ts, mqtt-device.ts,
// amqp-device.ts), at most `concurrency` in flight, with their outcomes tallied for a report.
import { performance } from "node:perf_hooks";

export const API_VERSION = "2019-03-31";
/** The SDK's per-request timeout (device-api.md §2). */
export const REQUEST_TIMEOUT_MS = 30_000;
/** Polls per device before the generator calls it a failure (the SDK would poll forever). */
export const MAX_POLLS = 30;

/** Who a simulated device is: its id scope and registration id, and its SAS token unless X.509. */
export interface DeviceIdentity {
  idScope: string;
  registrationId: string;
  /** A `registration` SAS token for `{idScope}/registrations/{id}`; absent with X.509. */
  token?: string;
  /** Data for a custom allocation webhook (device-api.md §5: the register body's `payload`). */
  payload?: unknown;
}

/** The register request's body (device-api.md §5.1). */
export const registerBody = (id: DeviceIdentity): Buffer =>
  Buffer.from(
    JSON.stringify({
      registrationId: id.registrationId,
      ...(id.payload !== undefined ? { payload: id.payload } : {}),
    }),
    "utf8",
  );

/** The fields of a register or poll answer the load generators look at. */
export interface OperationBody {
  status?: unknown;
  operationId?: unknown;
  errorCode?: unknown;
  message?: unknown;
  registrationState?: { errorCode?: unknown; errorMessage?: unknown; assignedHub?: unknown; deviceId?: unknown };
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
    .replace(/\b(bench-(?:dev|mqtt|amqp|x509)|sim)-[\w.-]+/g, "$1-…")
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

/** How one device's registration ended; an assigned device says where. */
export type Outcome =
  | { ok: true; polls: number; assignedHub?: string; deviceId?: string; registrationState?: unknown }
  | { ok: false; why: string };

/** The success outcome of an `assigned` answer: where the device went. */
export function assignedOutcome(body: OperationBody | undefined, polls: number): Outcome {
  const s = body?.registrationState;
  return {
    ok: true,
    polls,
    ...(typeof s?.assignedHub === "string" ? { assignedHub: s.assignedHub } : {}),
    ...(typeof s?.deviceId === "string" ? { deviceId: s.deviceId } : {}),
    ...(s !== undefined ? { registrationState: s } : {}),
  };
}

export interface LoadResult {
  /** Latency of every device that ended `assigned`, ms. */
  latencies: Float64Array;
  failures: Record<string, number>;
  /** Devices never started because the time limit came first (counted as failures too). */
  notStarted: number;
  polls: number;
  /** Devices assigned, by hub. */
  hubs: Record<string, number>;
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
  options: {
    /** Hears each device's ending as it comes (a progress bar). */
    onOutcome?: (outcome: Outcome, ms: number) => void;
    /** Starts per second at most; unpaced when absent. */
    ratePerSecond?: number;
  } = {},
): Promise<LoadResult> {
  const { onOutcome, ratePerSecond } = options;
  const latencies = new Float64Array(devices.length);
  let ok = 0;
  let polls = 0;
  let notStarted = 0;
  const failures: Record<string, number> = {};
  const hubs: Record<string, number> = {};
  let next = 0;
  const startedAt = epochNow();
  const paceFrom = performance.now();
  const lane = async (): Promise<void> => {
    while (next < devices.length) {
      const d = devices[next++];
      if (d === undefined) break;
      if (ratePerSecond !== undefined && ratePerSecond > 0) {
        // Device n starts no earlier than n / rate seconds after the first.
        const due = paceFrom + ((next - 1) * 1000) / ratePerSecond;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      if (Date.now() > deadline) {
        notStarted++;
        continue;
      }
      const t0 = performance.now();
      let r: Outcome;
      try {
        r = await register(d);
      } catch (err) {
        r = { ok: false, why: `network: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
      }
      const ms = performance.now() - t0;
      if (r.ok) {
        latencies[ok++] = ms;
        polls += r.polls;
        if (r.assignedHub) hubs[r.assignedHub] = (hubs[r.assignedHub] ?? 0) + 1;
      } else {
        failures[r.why] = (failures[r.why] ?? 0) + 1;
      }
      onOutcome?.(r, ms);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, lane));
  const endedAt = epochNow();
  if (notStarted > 0) failures["not started: time limit"] = notStarted;
  return { latencies: latencies.slice(0, ok), failures, notStarted, polls, hubs, startedAt, endedAt };
}
