// The one error catalogue (style.md): every DPS-facing error is defined here once, with its
// 6-digit code (HTTP status × 1000 + detail, service-api.md §8), its status and a message
// template. Nothing else invents error bodies.
import { randomUUID } from "node:crypto";

type Template = (p: Record<string, string | number>) => string;

interface ErrorDef {
  readonly code: number;
  readonly status: number;
  readonly message: Template;
  /** The IoT Hub error name, for errors of the built-in hub (iothub-api.md §4.3). */
  readonly hubCode?: string;
}

const def = (code: number, message: Template): ErrorDef => ({
  code,
  status: Math.floor(code / 1000),
  message,
});

const hubDef = (code: number, hubCode: string, message: Template): ErrorDef => ({ ...def(code, message), hubCode });

export const Errors = {
  // 400: the request itself is wrong
  malformedJson: def(400001, (p) => `The request body is not valid JSON: ${p.detail}.`),
  invalidBody: def(400004, (p) => `${p.detail}`),
  idMismatch: def(
    400005,
    (p) => `The ${p.field} in the body ('${p.bodyId}') does not match the one in the path ('${p.pathId}').`,
  ),
  invalidRegistrationId: def(
    400006,
    (p) =>
      `Registration id '${p.id}' is invalid: use 1-128 characters from A-Z a-z 0-9 - . _ : ending with a letter, digit or '-'.`,
  ),
  invalidEnrollmentGroupId: def(
    400007,
    (p) =>
      `Enrollment group id '${p.id}' is invalid: use 1-128 characters from A-Z a-z 0-9 - . _ : ending with a letter, digit or '-'.`,
  ),
  invalidAttestation: def(400008, (p) => `Invalid attestation: ${p.detail}.`),
  invalidBulk: def(400009, (p) => `Invalid bulk operation: ${p.detail}.`),
  invalidContinuation: def(400011, () => "The x-ms-continuation token is not one this service issued."),
  invalidHeader: def(400012, (p) => `Invalid ${p.header} header: ${p.detail}.`),
  invalidQueryParameter: def(400013, (p) => `Invalid query parameter '${p.name}': ${p.detail}.`),
  // CA certificates (management.md §5)
  invalidCaCertificate: def(400401, (p) => `Invalid certificate: ${p.detail}`),
  verificationFailed: def(400402, (p) => `Proof of possession for certificate '${p.name}' failed: ${p.reason}`),
  // Custom allocation webhook (behaviors.md §4.5): the device sees these as its registration error.
  customAllocationFailed: def(400207, (p) =>
    p.status === undefined
      ? `Custom allocation failed: ${p.reason}`
      : `Custom allocation failed with status code: ${p.status}${p.reason === undefined ? "" : `. ${p.reason}`}`,
  ),
  customAllocationHubNotSpecified: def(
    400208,
    (p) =>
      `Custom allocation failed: the webhook answered with status code ${p.status} but named no IoT hub; its response must set 'iotHubHostName' to one of the linked hubs.`,
  ),
  customAllocationUnauthorized: def(
    400209,
    () =>
      "Custom allocation failed with status code: 401. The webhook refused the call as unauthorized: put its function key in the webhook URL (?code=...).",
  ),

  // 401: who you are, or what you may do
  missingToken: def(
    401001,
    () => "The request has no Authorization header: send 'SharedAccessSignature sr=...&sig=...&se=...&skn=...'.",
  ),
  unauthorized: def(401002, (p) => `Unauthorized: ${p.detail}.`),
  tokenExpired: def(401003, (p) => `${String(p.reason).replace(/^the/, "The")}.`),
  missingRight: def(
    401004,
    (p) => `The shared access policy '${p.policy}' lacks the ${p.right} right needed for this operation.`,
  ),
  bearerExpired: def(401003, (p) => `The bearer token expired at ${p.expiry}; get a new one from the issuer.`),
  missingRole: def(
    401004,
    (p) =>
      `The bearer token of '${p.subject}' carries no role that grants ${p.right}: its ${p.claims} claims map to none (PROVISIO_OIDC_ROLES).`,
  ),

  // 404
  unknownRoute: def(404001, (p) => `No operation at ${p.method} ${p.path}.`),
  enrollmentNotFound: def(404201, (p) => `Enrollment '${p.id}' does not exist.`),
  registrationNotFound: def(404202, (p) => `No registration state for '${p.id}' exists.`),
  enrollmentGroupNotFound: def(404203, (p) => `Enrollment group '${p.id}' does not exist.`),
  instanceNotFound: def(404204, (p) => `Provisioning service '${p.name}' does not exist.`),
  unknownHost: def(
    404205,
    (p) => `No provisioning service answers for host '${p.host}'. Use the HostName of a service connection string.`,
  ),
  caCertificateNotFound: def(404401, (p) => `Certificate '${p.name}' does not exist in '${p.instance}'.`),

  // 405
  methodNotAllowed: def(405001, (p) => `${p.method} is not allowed on ${p.path}.`),

  // 409
  enrollmentExists: def(409201, () => "Enrollment already exists."),
  enrollmentGroupExists: def(409202, () => "Enrollment group already exists."),
  instanceExists: def(409203, (p) => `A provisioning service named '${p.name}' already exists.`),
  quotaExceeded: def(
    409004,
    (p) =>
      `'${p.instance}' already holds the maximum of ${p.limit} ${p.what} (${p.setting}); delete some before adding more, or raise the limit.`,
  ),
  tooManyCaCertificates: def(
    409401,
    (p) => `'${p.instance}' already holds the maximum of ${p.limit} CA certificates; delete one before adding another.`,
  ),

  // 412
  etagMismatch: def(
    412002,
    (p) => `The If-Match etag does not match the current version of '${p.id}'; read it again and retry.`,
  ),
  ifMatchRequired: def(
    412401,
    (p) =>
      `If-Match is required to ${p.operation} certificate '${p.name}': send its current etag (or '*' for any version).`,
  ),

  // 413 / 415 / 429
  bodyTooLarge: def(413001, (p) => `The request body exceeds the ${p.limit}-byte limit.`),
  unsupportedMediaType: def(415001, (p) => `Unsupported Content-Type '${p.type}': send application/json.`),
  throttled: def(429001, () => "Too many requests; retry after the Retry-After interval."),
  /** A rehearsal's 429 (PROVISIO_FAULTS): the device sees DPS's throttling, the metrics tell them apart. */
  faultThrottled: def(
    429001,
    (p) => `Too many requests (a fault injected for a rehearsal: '${p.rule}'); retry after the Retry-After interval.`,
  ),

  // Device registration (device-api.md, behaviors.md §3-7)
  registrationIdMismatch: def(
    400302,
    (p) => `The body's registrationId '${p.bodyId}' does not match '${p.pathId}' in the request.`,
  ),
  invalidPayload: def(400303, () => "'payload' must be a JSON object."),
  allocationFailed: def(400304, (p) => `No IoT hub could be assigned: ${p.reason}.`),
  unknownIdScope: def(
    404301,
    (p) =>
      `No provisioning service here has ID scope '${p.scope}'. Check the ID scope the device was given against this server's: idScope in provisio.json, or \`provisio status\`.`,
  ),
  operationNotFound: def(404302, (p) => `No registration operation '${p.id}' exists for this device; register again.`),
  hubApplyFailed: def(500301, (p) => `IoT hub '${p.hub}' did not accept the device: ${p.detail}`),
  carrierLost: def(
    500302,
    () => "The server node working on this registration stopped before it finished; register again.",
  ),

  // The built-in IoT hub (iothub-api.md §4.3): IoT Hub's own codes and names.
  hubArgumentInvalid: hubDef(400004, "ArgumentInvalid", (p) => `${p.detail}`),
  hubUnauthorized: hubDef(401002, "IotHubUnauthorizedAccess", (p) => `Unauthorized: ${p.detail}.`),
  hubDeviceNotFound: hubDef(404001, "DeviceNotFound", (p) => `Device '${p.id}' is not registered in this hub.`),
  hubUnknownHost: hubDef(404002, "IotHubNotFound", (p) => `No IoT hub answers for host '${p.host}'.`),
  hubRouteNotFound: hubDef(404003, "NotFound", (p) => `No operation at ${p.method} ${p.path}.`),
  hubDeviceExists: hubDef(409001, "DeviceAlreadyExists", (p) => `A device with ID '${p.id}' is already registered.`),
  hubModuleExists: hubDef(409301, "ModuleAlreadyExistsOnDevice", (p) => `Module '${p.id}' already exists.`),
  hubModuleNotFound: hubDef(404010, "ModuleNotFound", (p) => `Module '${p.id}' is not registered in this hub.`),
  hubPreconditionFailed: hubDef(
    412001,
    "PreconditionFailed",
    (p) => `The If-Match etag does not match the current version of '${p.id}'; read it again and retry.`,
  ),
  hubMessageTooLarge: hubDef(413001, "MessageTooLarge", (p) => `The message exceeds the ${p.limit}-byte limit.`),
  hubMessageLockLost: hubDef(
    412020,
    "DeviceMessageLockLost",
    (p) =>
      `No message of device '${p.id}' is locked with '${p.lockToken}': it was settled already, or its lock ran out (60 s) and it waits again.`,
  ),
  hubJobNotFound: hubDef(
    404104,
    "JobNotFound",
    (p) => `No job '${p.id}' in this hub (jobs are kept in memory until a restart).`,
  ),
  hubJobExists: hubDef(
    409002,
    "JobAlreadyExists",
    (p) => `A job with ID '${p.id}' already exists; choose another jobId.`,
  ),
  hubDeviceNotOnline: hubDef(
    404103,
    "DeviceNotOnline",
    (p) =>
      `Device '${p.id}' is not online for direct methods (${p.why}); connect it and listen for methods (MQTT: subscribe to $iothub/methods/POST/#; AMQP: attach the methods links), or give connectTimeoutInSeconds to wait for it.`,
  ),
  hubGatewayTimeout: hubDef(
    504101,
    "GatewayTimeout",
    (p) => `Device '${p.id}' did not answer method '${p.method}' within ${p.seconds} s (responseTimeoutInSeconds).`,
  ),

  // 500
  internal: def(500001, () => "An internal error occurred; the request was not applied. See the server log."),
  faultInternal: def(500004, (p) => `An internal error injected for a rehearsal ('${p.rule}'); register again later.`),
  // 503
  storageUnavailable: def(
    503001,
    () =>
      "The service cannot write its records right now (its disk is full or read-only, or its database is unreachable); nothing was changed. Retry after the Retry-After interval.",
  ),
  identityProviderUnavailable: def(
    503002,
    (p) =>
      `The bearer token cannot be checked now: the issuer's signing keys are unavailable (${p.detail}). Retry later.`,
  ),
} as const satisfies Record<string, ErrorDef>;

export type ErrorName = keyof typeof Errors;

/** An error with a DPS error code. Thrown anywhere, turned into a body at the edge. */
export class ProvisioError extends Error {
  readonly errorCode: number;
  readonly status: number;
  readonly errorName: ErrorName;
  readonly hubCode: string | undefined;
  /** For throttling: when the caller may try again (seconds). */
  readonly retryAfterSeconds: number | undefined;

  constructor(name: ErrorName, params: Record<string, string | number> = {}, retryAfterSeconds?: number) {
    const d = Errors[name];
    super(d.message(params));
    this.name = "ProvisioError";
    this.errorName = name;
    this.errorCode = d.code;
    this.status = d.status;
    this.hubCode = "hubCode" in d ? d.hubCode : undefined;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

export const fail = (name: ErrorName, params?: Record<string, string | number>): never => {
  throw new ProvisioError(name, params);
};

/** The DPS error body (service-api.md §8). */
export interface ErrorBody {
  errorCode: number;
  trackingId: string;
  message: string;
  timestampUtc: string;
}

/**
 * The body of any error, on every transport: a fresh GUID trackingId each time, so a reported
 * failure can be found in the server log (device-api.md §3.4).
 */
export function errorBody(e: ProvisioError, now = new Date()): ErrorBody {
  return { errorCode: e.errorCode, trackingId: randomUUID(), message: e.message, timestampUtc: now.toISOString() };
}

/**
 * The failure codes of the stores that mean "writes cannot be taken now, try again later": SQLite's
 * full disk, I/O errors and read-only files; PostgreSQL's disk full (53100), read-only
 * transactions (25006), connection failures (class 08) and shutdowns (57P01-57P03).
 */
const STORAGE_UNAVAILABLE = /^(SQLITE_FULL|SQLITE_IOERR.*|SQLITE_READONLY.*|53100|25006|08\w{3}|57P0[1-3])$/;

/** How long a client is told to wait when the store cannot take writes. */
export const STORAGE_RETRY_AFTER_SECONDS = 5;

export function isStorageUnavailable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && STORAGE_UNAVAILABLE.test(code);
}

/**
 * Any thrown value as a catalogue error: a store that cannot take writes is 503001 with a
 * Retry-After; anything else that is not one already is reported as 500001.
 */
export const toProvisioError = (err: unknown): ProvisioError =>
  err instanceof ProvisioError
    ? err
    : isStorageUnavailable(err)
      ? new ProvisioError("storageUnavailable", {}, STORAGE_RETRY_AFTER_SECONDS)
      : new ProvisioError("internal");
