// Scheduled jobs of a built-in hub (IoT Hub REST `/jobs/v2`): a twin update or a direct method on
// every device a WHERE condition matches, from a start time, within a maximum execution time,
// with IoT Hub's job resource (status and per-device statistics), cancellation and listing.
// Jobs live in memory: they run on the node that took them and are gone after a restart.
import { ProvisioError } from "../domain/errors.js";
import { isObject } from "../domain/json.js";
import type { HubRuntime } from "./builtin-hubs.js";
import { invokeDirectMethod, type MethodRequest, parseMethodRequest } from "./direct-methods.js";
import { parseTwinQuery, type TwinQuery } from "./twin-query.js";
import { matchingTwins } from "./twin-scan.js";

export type JobType = "scheduleUpdateTwin" | "scheduleDeviceMethod";
export type JobStatus = "queued" | "running" | "completed" | "failed" | "cancelled";

export interface DeviceJobStatistics {
  deviceCount: number;
  failedCount: number;
  succeededCount: number;
  runningCount: number;
  pendingCount: number;
}

export interface JobResource {
  jobId: string;
  type: JobType;
  queryCondition: string;
  createdTime: string;
  startTime: string;
  endTime?: string;
  maxExecutionTimeInSeconds: number;
  status: JobStatus;
  failureReason?: string;
  statusMessage?: string;
  updateTwin?: Record<string, unknown>;
  cloudToDeviceMethod?: Record<string, unknown>;
  deviceJobStatistics: DeviceJobStatistics;
}

interface JobRequest {
  resource: JobResource;
  query: TwinQuery;
  method?: MethodRequest;
}

/** How many devices a job works on at once. */
const PARALLEL_DEVICES = 16;
/** Finished jobs kept for GET and listing, per hub. */
const KEPT_JOBS = 1000;
const MAX_EXECUTION = { default: 3600, max: 172_800 };

const invalid = (detail: string) => new ProvisioError("hubArgumentInvalid", { detail });

/** A PUT /jobs/v2/{id} body, checked; the job as it will be stored. Pure but for the clock. */
export function parseJobRequest(jobId: string, body: unknown, now = new Date()): JobRequest {
  if (!/^[A-Za-z0-9._:-]{1,128}$/.test(jobId)) throw invalid("A jobId is 1-128 letters, digits, '-', '.', '_' or ':'.");
  if (!isObject(body))
    throw invalid("The body must be a JSON object with type, queryCondition and updateTwin or cloudToDeviceMethod.");
  if (body.jobId !== undefined && body.jobId !== jobId)
    throw invalid(`The body's jobId '${String(body.jobId)}' is not the path's '${jobId}'.`);
  const type = body.type;
  if (type !== "scheduleUpdateTwin" && type !== "scheduleDeviceMethod") {
    throw invalid("'type' must be scheduleUpdateTwin or scheduleDeviceMethod.");
  }
  if (typeof body.queryCondition !== "string" || body.queryCondition.trim() === "") {
    throw invalid(
      "'queryCondition' is required: the WHERE condition of the devices the job runs on, e.g. tags.site = 'berlin'.",
    );
  }
  const query = parseTwinQuery(`SELECT * FROM devices WHERE ${body.queryCondition}`);
  const max = body.maxExecutionTimeInSeconds ?? MAX_EXECUTION.default;
  if (typeof max !== "number" || !Number.isInteger(max) || max < 1 || max > MAX_EXECUTION.max) {
    throw invalid(`'maxExecutionTimeInSeconds' must be a whole number of seconds from 1 to ${MAX_EXECUTION.max}.`);
  }
  let start = now;
  if (body.startTime !== undefined && body.startTime !== null) {
    if (typeof body.startTime !== "string" || Number.isNaN(Date.parse(body.startTime))) {
      throw invalid("'startTime' must be an ISO-8601 time, or null for now.");
    }
    start = new Date(Math.max(Date.parse(body.startTime), now.getTime()));
  }
  const resource: JobResource = {
    jobId,
    type,
    queryCondition: body.queryCondition,
    createdTime: now.toISOString(),
    startTime: start.toISOString(),
    maxExecutionTimeInSeconds: max,
    status: "queued",
    deviceJobStatistics: { deviceCount: 0, failedCount: 0, succeededCount: 0, runningCount: 0, pendingCount: 0 },
  };
  if (type === "scheduleUpdateTwin") {
    const patch = body.updateTwin;
    if (!isObject(patch) || (patch.tags === undefined && patch.properties === undefined)) {
      throw invalid("'updateTwin' must hold tags and/or properties.desired to set on each device.");
    }
    return { resource: { ...resource, updateTwin: patch }, query };
  }
  const c2d = body.cloudToDeviceMethod;
  if (!isObject(c2d)) throw invalid("'cloudToDeviceMethod' must hold methodName, payload and the timeouts.");
  return { resource: { ...resource, cloudToDeviceMethod: c2d }, query, method: parseMethodRequest(c2d) };
}

export class HubJobs {
  readonly #jobs = new Map<string, { resource: JobResource; cancelled: boolean }>();

  constructor(private readonly rt: HubRuntime) {}

  /** Stores and schedules a job; its resource as stored. */
  create(jobId: string, body: unknown): JobResource {
    if (this.#jobs.has(jobId)) throw new ProvisioError("hubJobExists", { id: jobId });
    const request = parseJobRequest(jobId, body);
    const entry = { resource: request.resource, cancelled: false };
    this.#jobs.set(jobId, entry);
    this.#forget();
    const delay = Math.max(0, Date.parse(request.resource.startTime) - Date.now());
    setTimeout(() => void this.#run(entry, request), delay).unref();
    return { ...entry.resource };
  }

  get(jobId: string): JobResource {
    const job = this.#jobs.get(jobId);
    if (!job) throw new ProvisioError("hubJobNotFound", { id: jobId });
    return { ...job.resource, deviceJobStatistics: { ...job.resource.deviceJobStatistics } };
  }

  /** Devices not yet worked on are left alone; those under way finish. */
  cancel(jobId: string): JobResource {
    const job = this.#jobs.get(jobId);
    if (!job) throw new ProvisioError("hubJobNotFound", { id: jobId });
    if (job.resource.status === "queued" || job.resource.status === "running") {
      job.cancelled = true;
      job.resource.status = "cancelled";
      job.resource.endTime = new Date().toISOString();
    }
    return this.get(jobId);
  }

  list(filter: { type?: string; status?: string }): JobResource[] {
    return [...this.#jobs.values()]
      .map((j) => j.resource)
      .filter((r) => (!filter.type || r.type === filter.type) && (!filter.status || r.status === filter.status))
      .map((r) => ({ ...r, deviceJobStatistics: { ...r.deviceJobStatistics } }));
  }

  async #run(entry: { resource: JobResource; cancelled: boolean }, request: JobRequest): Promise<void> {
    const job = entry.resource;
    if (entry.cancelled) return;
    job.status = "running";
    const deadline = Date.now() + job.maxExecutionTimeInSeconds * 1000;
    const stats = job.deviceJobStatistics;
    const devices: string[] = [];
    try {
      for await (const { deviceId } of matchingTwins(this.rt.registry, request.query)) devices.push(deviceId);
    } catch (err) {
      job.status = "failed";
      job.failureReason = `The devices could not be listed: ${(err as Error).message}`;
      job.endTime = new Date().toISOString();
      return;
    }
    stats.deviceCount = devices.length;
    stats.pendingCount = devices.length;
    let next = 0;
    const worker = async () => {
      for (;;) {
        if (entry.cancelled || Date.now() > deadline) return;
        const deviceId = devices[next++];
        if (deviceId === undefined) return;
        stats.pendingCount--;
        stats.runningCount++;
        const ok = await this.#onDevice(deviceId, request).then(
          () => true,
          () => false,
        );
        stats.runningCount--;
        if (ok) stats.succeededCount++;
        else stats.failedCount++;
      }
    };
    await Promise.all(Array.from({ length: PARALLEL_DEVICES }, worker));
    if (entry.cancelled) return;
    job.endTime = new Date().toISOString();
    if (stats.pendingCount > 0) {
      job.status = "failed";
      job.failureReason = `The job ran out of its ${job.maxExecutionTimeInSeconds} s with ${stats.pendingCount} devices not reached.`;
    } else {
      job.status = "completed";
    }
  }

  #onDevice(deviceId: string, request: JobRequest): Promise<unknown> {
    if (request.method) return invokeDirectMethod(this.rt.sessions, deviceId, request.method);
    const { etag: _etag, ...patch } = request.resource.updateTwin ?? {};
    return this.rt.registry.updateTwin(deviceId, patch, undefined, "patch");
  }

  /** Keeps the newest KEPT_JOBS finished jobs. */
  #forget(): void {
    const finished = [...this.#jobs.entries()].filter(([, j]) => !["queued", "running"].includes(j.resource.status));
    for (const [id] of finished.slice(0, Math.max(0, finished.length - KEPT_JOBS))) this.#jobs.delete(id);
  }
}
