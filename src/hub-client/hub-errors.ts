// Errors from a linked IoT hub, as one type the provisioning engine can act on (iothub-api.md §4.3):
// HTTP error responses in either IoT Hub body form, and failures to reach the hub at all.
import type { IncomingHttpHeaders } from "node:http";
import { isObject } from "../domain/json.js";

/** "Unreachable" (status 0) and "Timeout" (status 504) are ours; every other code is IoT Hub's ErrorCode. */
export class HubError extends Error {
  override readonly name = "HubError";

  /** The hub's tracking id, when it sent one: what Azure support asks for. */
  readonly trackingId?: string;

  constructor(
    /** HTTP status from the hub; 0 when no response arrived; 504 on our own timeout. */
    readonly status: number,
    /** IoT Hub ErrorCode (`DeviceNotFound`, `IotHubUnauthorizedAccess`, ...), `Unreachable` or `Timeout`. */
    readonly code: string,
    message: string,
    readonly hostName: string,
    options: { trackingId?: string; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    if (options.trackingId) this.trackingId = options.trackingId;
  }

  /** Worth retrying later: the hub was not reached, timed out, throttled or failed on its side. */
  get transient(): boolean {
    return this.status === 0 || this.status === 408 || this.status === 429 || this.status >= 500;
  }
}

// Numeric codes of the newer error form → ErrorCode names (public SDK enums, iothub-api.md §4.3).
const NUMERIC_CODES: Record<number, string> = {
  400004: "ArgumentInvalid",
  400005: "ArgumentNull",
  401002: "IotHubUnauthorizedAccess",
  403002: "IotHubQuotaExceeded",
  404001: "DeviceNotFound",
  409001: "DeviceAlreadyExists",
  412001: "PreconditionFailed",
  429001: "ThrottlingException",
  500001: "ServerError",
  503001: "ServiceUnavailable",
};

const STATUS_CODES: Record<number, string> = {
  400: "ArgumentInvalid",
  401: "IotHubUnauthorizedAccess",
  403: "IotHubQuotaExceeded",
  404: "NotFound",
  408: "DeviceTimeout",
  409: "Conflict",
  412: "PreconditionFailed",
  413: "MessageTooLarge",
  429: "ThrottlingException",
  503: "ServiceUnavailable",
};

// What a person operating Provisio can do about the common failures.
const HINTS: Record<string, string> = {
  IotHubUnauthorizedAccess:
    "Check the linked hub's connection string: the key must be current and the policy needs RegistryRead, RegistryWrite and ServiceConnect (e.g. iothubowner).",
  IotHubQuotaExceeded: "The hub's device or message quota is used up.",
  ThrottlingException: "The hub is throttling requests; retry later.",
};

interface ParsedBody {
  code?: string;
  text?: string;
  trackingId?: string;
}

const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);

/** `{"errorCode":404001,"trackingId":"...","message":"...","timestampUtc":"..."}` (newer form). */
function fromStructured(o: Record<string, unknown>): ParsedBody {
  const n = typeof o.errorCode === "number" ? o.errorCode : Number(o.errorCode);
  const parsed: ParsedBody = {};
  const code = Number.isInteger(n) ? (NUMERIC_CODES[n] ?? undefined) : str(o.errorCode);
  if (code) parsed.code = code;
  const text = str(o.message) ?? str(o.Message);
  if (text) parsed.text = Number.isInteger(n) && !NUMERIC_CODES[n] ? `${text} (error ${n})` : text;
  const trackingId = str(o.trackingId);
  if (trackingId) parsed.trackingId = trackingId;
  return parsed;
}

const TRACKING = /Tracking ID:\s*([^\s-]+)/i;

/** Classic `{"Message":"ErrorCode:X;text\r\nTracking ID:...","ExceptionMessage":"Tracking ID:..."}` and the newer forms. */
export function parseHubErrorBody(body: string): ParsedBody {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    const text = body.trim();
    return text ? { text: text.slice(0, 300) } : {};
  }
  if (!isObject(json)) return {};
  const message = str(json.Message);
  if (message === undefined) return fromStructured(json);
  const parsed: ParsedBody = {};
  if (message.trimStart().startsWith("{")) {
    try {
      const inner: unknown = JSON.parse(message);
      if (isObject(inner)) return fromStructured(inner);
    } catch {
      // Not JSON after all: treat as text below.
    }
  }
  const classic = /^ErrorCode:([^;]*);([\s\S]*)$/.exec(message);
  const rawText = classic ? (classic[2] ?? "") : message;
  if (classic?.[1]) parsed.code = classic[1].trim();
  // The text often ends with "\r\nTracking ID:..."; keep the sentence a person reads.
  const text = rawText.split(/\r?\n/)[0]?.trim();
  if (text) parsed.text = text;
  const tracking = TRACKING.exec(rawText) ?? TRACKING.exec(str(json.ExceptionMessage) ?? "");
  if (tracking?.[1]) parsed.trackingId = tracking[1];
  return parsed;
}

/** A non-2xx response from the hub. `what` names the request, e.g. `PUT /devices/dev-1`. */
export function hubErrorFromResponse(
  hostName: string,
  what: string,
  status: number,
  headers: IncomingHttpHeaders,
  body: string,
): HubError {
  const parsed = parseHubErrorBody(body);
  const header = headers["iothub-errorcode"];
  const code =
    (typeof header === "string" && header !== "" ? header : undefined) ??
    parsed.code ??
    STATUS_CODES[status] ??
    (status >= 500 ? "ServerError" : `Http${status}`);
  const hint = HINTS[code];
  const message =
    `IoT hub ${hostName} refused ${what}: ${status} ${code}` +
    (parsed.text ? ` - ${parsed.text}` : "") +
    (hint ? ` ${hint}` : "");
  return new HubError(status, code, message, hostName, parsed.trackingId ? { trackingId: parsed.trackingId } : {});
}

// OpenSSL / Node codes that mean "the hub's certificate was not accepted".
const CERT_CODES = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
]);

/** No HTTP response: refused, unresolvable, reset, or a TLS handshake that failed. */
export function hubErrorFromNetwork(hostName: string, dialed: string, what: string, err: unknown): HubError {
  const e = err as NodeJS.ErrnoException;
  const code = e?.code ?? "";
  const detail = e?.message ?? String(err);
  let reason: string;
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") {
    reason = `its TLS certificate does not cover the name ${hostName} (${detail}).`;
  } else if (CERT_CODES.has(code)) {
    reason = `its TLS certificate is not trusted (${code}: ${detail}). Trust the CA that issued the hub's certificate.`;
  } else if (code.startsWith("ERR_SSL") || code.startsWith("ERR_TLS") || /certificate|ssl|tls/i.test(detail)) {
    reason = `the TLS handshake failed (${code || "TLS"}: ${detail}); the certificate or TLS settings do not match.`;
  } else if (code === "ECONNREFUSED") {
    reason = "the connection was refused; nothing is listening there.";
  } else if (code === "ENOTFOUND" || code === "EAI_AGAIN") {
    reason = `the host name does not resolve (${code}).`;
  } else {
    reason = `${code ? `${code}: ` : ""}${detail}`;
  }
  return new HubError(
    0,
    "Unreachable",
    `IoT hub ${hostName} is unreachable at ${dialed} (${what}): ${reason}`,
    hostName,
    {
      cause: err,
    },
  );
}

export const hubTimeout = (hostName: string, dialed: string, what: string, ms: number): HubError =>
  new HubError(504, "Timeout", `IoT hub ${hostName} at ${dialed} did not answer ${what} within ${ms} ms.`, hostName);
