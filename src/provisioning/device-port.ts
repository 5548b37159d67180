// The device port: everything a device transport (HTTPS, MQTT, AMQP, each also over WebSockets)
// needs from the provisioning engine, and nothing else (design.md, "The flow of one
// registration"). A transport decodes its envelope into a request, asks the port, and encodes the
// reply: a status, one JSON body — an operation, a registration state, a TPM challenge or a DPS
// error from the catalogue — and a retry-after. Replies are values: the port never rejects.
import type { DeviceEvidence } from "../attestation/attestation-outcome.js";
import type { TpmKeys } from "../attestation/tpm-attestation.js";
import { type ErrorBody, errorBody, type ProvisioError, toProvisioError } from "../domain/errors.js";
import type { DeviceRegistrationResult, RegistrationOperation } from "../domain/operation.js";
import type { DeviceProtocol } from "../observability/metrics.js";

/** What the device presented: a SAS token, its TLS client chain, or nothing. */
export type DeviceCredentials = DeviceEvidence;

export interface DeviceRequest {
  idScope: string;
  registrationId: string;
  credentials: DeviceCredentials;
  /** The device's address; a function because asking the socket costs a syscall few policies need. */
  sourceAddress: () => string;
  /** A TPM device's keys when its transport carries them outside a body (AMQP's SASL TPM). */
  tpm?: TpmKeys;
  /** The protocol the device came over: metrics count by it, and MQTT has no TPM exchange. */
  protocol?: DeviceProtocol;
}

export interface RegisterRequest extends DeviceRequest {
  /** The parsed request body: `{registrationId, payload?, tpm?}` (device-api.md §3.1). */
  body: unknown;
}

/** RegistrationOperationStatus (device-api.md §3.2). */
export interface OperationStatusBody {
  operationId: string;
  status: RegistrationOperation["status"];
  registrationState?: DeviceRegistrationResult;
}

export type DeviceReply =
  /** 200 when final, 202 while assigning (with a retry-after): register and operation status. */
  | { kind: "operation"; status: 200 | 202; body: OperationStatusBody; retryAfter?: number }
  /** The registration status lookup (device-api.md §1). */
  | { kind: "registration"; status: 200; body: DeviceRegistrationResult }
  /** TPM's first leg (tpm-attestation.md §3): 401 with the blob to activate and the SAS key name. */
  | { kind: "challenge"; status: 401; body: { message: string; authenticationKey: string; keyName: string } }
  /** A DPS error: status, 6-digit code, a fresh trackingId; retry-after when the device should retry. */
  | { kind: "error"; status: number; body: ErrorBody; error: ProvisioError; retryAfter?: number };

/** A session transport's attestation, kept between its requests: credentials cannot change within one. */
export interface DeviceSession {
  readonly registrationId: string;
}

export interface DevicePort {
  /** Attest once for a session transport (MQTT, AMQP); a refusal is the reply to give. */
  openSession(req: DeviceRequest): Promise<{ ok: true; session: DeviceSession } | { ok: false; reply: DeviceReply }>;
  /** PUT …/register, MQTT iotdps-register, AMQP iotdps-register. */
  register(req: RegisterRequest, session?: DeviceSession): Promise<DeviceReply>;
  /** GET …/operations/{id}, iotdps-get-operationstatus: the device attests again (or by its session). */
  operationStatus(req: DeviceRequest, operationId: string, session?: DeviceSession): Promise<DeviceReply>;
  /** POST …/registrations/{id}: the device's current registration state. */
  registrationStatus(req: DeviceRequest): Promise<DeviceReply>;
  /**
   * Whether the instance's network settings (IP filter, public network access) let a device in
   * from this address: a session transport asks before it reads any credential.
   */
  admitsFrom(idScope: string, sourceAddress: string): boolean;
  /**
   * An open session transport's connection: `onRefused` runs if the instance's network settings
   * change to refuse its address (the transport then closes it). Returns the unwatch function.
   */
  watchAdmission(idScope: string, sourceAddress: string, onRefused: () => void): () => void;
}

/** An operation as the device sees it, final or still assigning. */
export function operationReply(operation: RegistrationOperation, retryAfter?: number): DeviceReply {
  const body: OperationStatusBody = {
    operationId: operation.operationId,
    status: operation.status,
    ...(operation.registrationState ? { registrationState: operation.registrationState } : {}),
  };
  return operation.status === "assigning"
    ? { kind: "operation", status: 202, body, retryAfter: retryAfter ?? 1 }
    : { kind: "operation", status: 200, body };
}

/** Any thrown value as the DPS error reply; retryable ones (≥ 429) say when to come back. */
export function errorReply(err: unknown): DeviceReply {
  const error = toProvisioError(err);
  const retryAfter = error.retryAfterSeconds ?? (error.status >= 429 ? 1 : undefined);
  return {
    kind: "error",
    status: error.status,
    body: errorBody(error),
    error,
    ...(retryAfter !== undefined ? { retryAfter } : {}),
  };
}

/** A reply thrown through a promise chain (a session's refusal), told apart from an error. */
export const isDeviceReply = (v: unknown): v is DeviceReply =>
  typeof v === "object" && v !== null && "kind" in v && "status" in v;
