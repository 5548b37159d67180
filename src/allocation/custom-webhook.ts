// Custom allocation (`custom`), behaviors.md §4.5: POST an AllocationRequest to the enrollment's webhook and turn
// its answer into a hub (plus optional initial twin and payload) or a DPS error 400207 / 400208 / 400209.
// Every attempt is recorded so the registration can show what the webhook was sent and what it answered.
import { type ClientRequest, request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { setTimeout as sleep } from "node:timers/promises";
import type { InitialTwin } from "../domain/enrollment.js";
import type { EnrollmentMatch } from "../domain/enrollment-match.js";
import { enrollmentWire, groupWire } from "../domain/enrollment-wire.js";
import { ProvisioError } from "../domain/errors.js";
import { isObject } from "../domain/json.js";
import { VERSION } from "../version.js";

export interface WebhookCall {
  /** The webhook URL with everything after '?' (the function key) replaced by '****'. */
  url: string;
  request: unknown;
  status?: number;
  /** The parsed JSON answer, or its text when it is not JSON. */
  response?: unknown;
  error?: string;
  durationMs: number;
  /** 1 for the first call, 2 for the first retry, ... */
  attempt: number;
  /** When the call started (ISO 8601). */
  at: string;
}

export type WebhookOutcome =
  | { ok: true; iotHubHostName: string; initialTwin?: InitialTwin; payload?: unknown; calls: WebhookCall[] }
  | { ok: false; error: ProvisioError; calls: WebhookCall[] };

export interface WebhookOptions {
  /** Per call: connecting, sending and reading the whole answer. */
  timeoutMs: number;
  /** Waits before each retry of a retriable outcome (status ≥ 429, timeout, network error). */
  retryDelaysMs: number[];
  /** Extra trust for https webhooks (tests, private CAs). */
  ca?: string | Buffer;
  /** Gives up at once (no further calls or waits) when aborted, e.g. on shutdown. */
  signal?: AbortSignal;
}

/** 10 retries: initial interval 1 s, +9 s per retry (1, 10, 19, … 82 s), behaviors.md §4.5. */
export const DEFAULT_RETRY_DELAYS_MS: readonly number[] = Array.from({ length: 10 }, (_, i) => 1000 + 9000 * i);
export const DEFAULT_WEBHOOK_TIMEOUT_MS = 30_000;
/** DPS messages are limited to 96 KB (§5); a longer answer fails the allocation. */
export const MAX_WEBHOOK_RESPONSE_BYTES = 96 * 1024;
/** How much of a webhook's answer is quoted in the device-visible error message. */
const QUOTED_RESPONSE_CHARS = 500;

/** The function key travels in the query string: never echo it (§4.5). */
export function maskWebhookUrl(url: string): string {
  const q = url.indexOf("?");
  return q < 0 ? url : `${url.slice(0, q)}?****`;
}

/** Exactly one of the three, as the device attested: symmetric key carries no key material. */
export type RuntimeAttestation =
  | { symmetricKey: Record<string, never> }
  | { x509: Record<string, unknown> }
  | { tpm: Record<string, unknown> };

/** The AllocationRequest body (§4.5): the enrollment as the service API shows it, without secrets. */
export function buildAllocationRequest(input: {
  enrollment: EnrollmentMatch;
  registrationId: string;
  currentIotHubHostName?: string | undefined;
  currentDeviceId?: string | undefined;
  attestation: RuntimeAttestation;
  payload?: unknown;
  linkedHubs: readonly string[];
}): Record<string, unknown> {
  const e = input.enrollment;
  const wire = e.kind === "individual" ? enrollmentWire(e.enrollment, false) : groupWire(e.group, false);
  const definition = (e.kind === "individual" ? e.enrollment : e.group).customAllocationDefinition;
  if (definition) {
    wire.customAllocationDefinition = { ...definition, webhookUrl: maskWebhookUrl(definition.webhookUrl) };
  }
  const deviceRuntimeContext: Record<string, unknown> = {
    registrationId: input.registrationId,
    ...(input.currentIotHubHostName ? { currentIotHubHostName: input.currentIotHubHostName } : {}),
    ...(input.currentDeviceId ? { currentDeviceId: input.currentDeviceId } : {}),
    ...input.attestation,
    ...(input.payload !== undefined && input.payload !== null ? { payload: input.payload } : {}),
  };
  return {
    [e.kind === "individual" ? "individualEnrollment" : "enrollmentGroup"]: wire,
    deviceRuntimeContext,
    linkedHubs: [...input.linkedHubs],
  };
}

/** What one HTTP exchange gave: an answer, or why there was none. */
type Exchange =
  | { kind: "answer"; status: number; text: string }
  | { kind: "tooLarge"; status: number }
  | { kind: "timeout" }
  | { kind: "network"; message: string };

/** One attempt's verdict: done (success or final failure), or worth another try. */
type Verdict =
  | { final: true; outcome: { ok: true; iotHubHostName: string; initialTwin?: InitialTwin; payload?: unknown } }
  | { final: true; outcome: { ok: false; error: ProvisioError } }
  | { final: false; error: ProvisioError };

export async function callAllocationWebhook(
  definition: { webhookUrl: string; apiVersion: string },
  request: Record<string, unknown>,
  linkedHubs: readonly string[],
  options: Partial<WebhookOptions> = {},
): Promise<WebhookOutcome> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_WEBHOOK_TIMEOUT_MS;
  const delays = options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
  const maskedUrl = maskWebhookUrl(definition.webhookUrl);
  const calls: WebhookCall[] = [];

  let url: URL;
  try {
    url = new URL(definition.webhookUrl);
    if (url.protocol !== "https:" && url.protocol !== "http:") throw new Error(`unsupported scheme ${url.protocol}`);
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    calls.push({
      url: maskedUrl,
      request,
      error: `invalid webhook URL: ${detail}`,
      durationMs: 0,
      attempt: 1,
      at: now(),
    });
    return failed(calls, "the enrollment's webhook URL is not a valid http(s) URL.");
  }

  const body = Buffer.from(JSON.stringify(request));
  for (let attempt = 1; ; attempt++) {
    if (options.signal?.aborted) return failed(calls, "the registration was cancelled while calling the webhook.");
    const at = now();
    const started = performance.now();
    const exchange = await post(url, body, timeoutMs, options.ca, options.signal);
    const call: WebhookCall = {
      url: maskedUrl,
      request,
      durationMs: Math.round(performance.now() - started),
      attempt,
      at,
    };
    calls.push(call);
    const verdict = judge(exchange, call, linkedHubs, timeoutMs, attempt);
    if (verdict.final) return { ...verdict.outcome, calls };
    const delay = delays[attempt - 1];
    if (delay === undefined) return { ok: false, error: verdict.error, calls };
    try {
      await sleep(delay, undefined, options.signal ? { signal: options.signal } : {});
    } catch {
      return failed(calls, "the registration was cancelled while waiting to retry the webhook.");
    }
  }
}

const now = (): string => new Date().toISOString();

const failed = (calls: WebhookCall[], reason: string): WebhookOutcome => ({
  ok: false,
  error: new ProvisioError("customAllocationFailed", { reason }),
  calls,
});

/** Fills in `call` from the exchange and decides what it means (§4.5 failure table). */
function judge(
  exchange: Exchange,
  call: WebhookCall,
  linkedHubs: readonly string[],
  timeoutMs: number,
  attempt: number,
): Verdict {
  const tries = attempt === 1 ? "" : ` (${attempt} attempts)`;
  switch (exchange.kind) {
    case "timeout":
      call.error = `no answer within ${timeoutMs} ms`;
      return retry({ reason: `the webhook did not answer within ${timeoutMs} ms${tries}.` });
    case "network":
      call.error = exchange.message;
      return retry({ reason: `the webhook could not be reached: ${exchange.message}${tries}.` });
    case "tooLarge":
      call.status = exchange.status;
      call.error = `response longer than ${MAX_WEBHOOK_RESPONSE_BYTES} bytes`;
      return fail({
        status: exchange.status,
        reason: `The webhook's response exceeds the ${MAX_WEBHOOK_RESPONSE_BYTES}-byte limit.`,
      });
  }
  const { status, text } = exchange;
  call.status = status;
  const json = parseJson(text);
  call.response = json.ok ? json.value : text;
  if (status === 401) {
    call.error = "unauthorized";
    return { final: true, outcome: { ok: false, error: new ProvisioError("customAllocationUnauthorized") } };
  }
  if (status >= 429) {
    call.error = `status ${status}`;
    return retry({ status, reason: `The webhook answered${tries}: ${quote(text)}` });
  }
  if (status < 200 || status > 299) {
    call.error = `status ${status}`;
    return fail({ status, reason: `The webhook answered: ${quote(text)}` });
  }
  return readAllocation(status, text, json, call, linkedHubs);
}

const retry = (params: Record<string, string | number>): Verdict => ({
  final: false,
  error: new ProvisioError("customAllocationFailed", params),
});

const fail = (params: Record<string, string | number>): Verdict => ({
  final: true,
  outcome: { ok: false, error: new ProvisioError("customAllocationFailed", params) },
});

/** A 2xx answer: the AllocationResponse, property names case-insensitive. */
function readAllocation(
  status: number,
  text: string,
  json: { ok: true; value: unknown } | { ok: false },
  call: WebhookCall,
  linkedHubs: readonly string[],
): Verdict {
  const hubNotSpecified = (): Verdict => {
    call.error = "no iotHubHostName";
    return {
      final: true,
      outcome: { ok: false, error: new ProvisioError("customAllocationHubNotSpecified", { status }) },
    };
  };
  if (text.trim() === "") return hubNotSpecified();
  if (!json.ok || !isObject(json.value)) {
    call.error = "response is not a JSON object";
    return fail({ reason: `the webhook answered ${status} with a body that is not a JSON object: ${quote(text)}` });
  }
  const answer = json.value;
  const hub = field(answer, "iotHubHostName");
  if (hub === undefined || hub === null || (typeof hub === "string" && hub.trim() === "")) return hubNotSpecified();
  if (typeof hub !== "string") {
    call.error = "iotHubHostName is not a string";
    return fail({ reason: `the webhook's iotHubHostName must be a string, not ${JSON.stringify(hub)}.` });
  }
  const linked = linkedHubs.find((h) => h.toLowerCase() === hub.trim().toLowerCase());
  if (linked === undefined) {
    call.error = `hub ${hub} is not linked`;
    const choices = linkedHubs.length === 0 ? "none" : linkedHubs.join(", ");
    return fail({
      reason: `the webhook names hub ${hub}, which is not linked to this enrollment (linked hubs: ${choices}).`,
    });
  }
  const twin = initialTwinOf(field(answer, "initialTwin"));
  if (!twin.ok) {
    call.error = "invalid initialTwin";
    return fail({ reason: `the webhook's initialTwin is invalid: ${twin.reason}.` });
  }
  const payload = field(answer, "payload");
  return {
    final: true,
    outcome: {
      ok: true,
      iotHubHostName: linked,
      ...(twin.value ? { initialTwin: twin.value } : {}),
      ...(payload !== undefined && payload !== null ? { payload } : {}),
    },
  };
}

/** `initialTwin` absent or null → none (the enrollment's applies); otherwise tags / properties.desired objects. */
function initialTwinOf(raw: unknown): { ok: true; value?: InitialTwin } | { ok: false; reason: string } {
  if (raw === undefined || raw === null) return { ok: true };
  if (!isObject(raw)) return { ok: false, reason: "it must be a JSON object" };
  const twin: InitialTwin = {};
  const tags = field(raw, "tags");
  if (tags !== undefined && tags !== null) {
    if (!isObject(tags)) return { ok: false, reason: "tags must be a JSON object" };
    twin.tags = tags;
  }
  const properties = field(raw, "properties");
  if (properties !== undefined && properties !== null) {
    if (!isObject(properties)) return { ok: false, reason: "properties must be a JSON object" };
    const desired = field(properties, "desired");
    if (desired !== undefined && desired !== null) {
      if (!isObject(desired)) return { ok: false, reason: "properties.desired must be a JSON object" };
      twin.properties = { desired };
    } else {
      twin.properties = {};
    }
  }
  return { ok: true, value: twin };
}

/** Property lookup ignoring case (.NET deserializers do, and the docs spell iotHubHostName both ways). */
function field(o: Record<string, unknown>, name: string): unknown {
  if (Object.hasOwn(o, name)) return o[name];
  const lower = name.toLowerCase();
  const key = Object.keys(o).find((k) => k.toLowerCase() === lower);
  return key === undefined ? undefined : o[key];
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

function quote(text: string): string {
  const t = text.trim();
  if (t === "") return "(empty response)";
  return t.length > QUOTED_RESPONSE_CHARS ? `${t.slice(0, QUOTED_RESPONSE_CHARS)}…` : t;
}

/** One POST; settles exactly once, within `timeoutMs`, reading at most MAX_WEBHOOK_RESPONSE_BYTES. */
function post(
  url: URL,
  body: Buffer,
  timeoutMs: number,
  ca: string | Buffer | undefined,
  signal: AbortSignal | undefined,
): Promise<Exchange> {
  return new Promise<Exchange>((resolve) => {
    let req: ClientRequest | undefined;
    let settled = false;
    const settle = (e: Exchange): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      req?.destroy();
      resolve(e);
    };
    const onAbort = (): void => settle({ kind: "network", message: "cancelled" });
    const timer = setTimeout(() => settle({ kind: "timeout" }), timeoutMs);
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const send = url.protocol === "https:" ? httpsRequest : httpRequest;
      req = send(url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "content-length": body.length,
          accept: "application/json",
          "user-agent": `provisio/${VERSION}`,
        },
        ...(ca !== undefined && url.protocol === "https:" ? { ca } : {}),
      });
    } catch (err) {
      settle({ kind: "network", message: err instanceof Error ? err.message : String(err) });
      return;
    }
    req.on("error", (err) => settle({ kind: "network", message: err.message || String(err) }));
    req.on("response", (res: IncomingMessage) => {
      const status = res.statusCode ?? 0;
      const declared = Number(res.headers["content-length"]);
      if (Number.isFinite(declared) && declared > MAX_WEBHOOK_RESPONSE_BYTES) {
        settle({ kind: "tooLarge", status });
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_WEBHOOK_RESPONSE_BYTES) settle({ kind: "tooLarge", status });
        else chunks.push(chunk);
      });
      res.on("end", () => settle({ kind: "answer", status, text: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", (err) => settle({ kind: "network", message: err.message || String(err) }));
    });
    if (signal?.aborted) onAbort();
    else req.end(body);
  });
}
