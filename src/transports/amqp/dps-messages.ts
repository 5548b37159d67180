// The DPS AMQP grammar (device-api.md §7): link addresses, SASL PLAIN identities, request
// messages in, response messages and rejections out. Pure: messages are values (rhea's decoded
// shape), tested from byte fixtures in test/transports/amqp/dps-messages.test.ts.
import rhea from "rhea";
import type { DeviceReply } from "../../provisioning/device-port.js";

export const OPERATION_TYPE = "iotdps-operation-type";
export const OPERATION_ID = "iotdps-operation-id";
export const STATUS = "iotdps-status";
export const RETRY_AFTER = "retry-after";
export const REGISTER = "iotdps-register";
export const GET_OPERATION_STATUS = "iotdps-get-operationstatus";

export interface DeviceAddress {
  idScope: string;
  registrationId: string;
}

/**
 * `{idScope}/registrations/{registrationId}`: the SASL PLAIN authcid and the Node SDK's link
 * address (§7.1-7.2). The C SDK puts `amqps://{host}/` in front of its link addresses.
 */
export function parseDeviceAddress(address: string | undefined): DeviceAddress | undefined {
  if (!address) return undefined;
  const m = /^(?:amqps?:\/\/[^/]+\/)?([^/]+)\/registrations\/([^/]+)$/i.exec(address);
  return m?.[1] && m[2] ? { idScope: m[1], registrationId: m[2] } : undefined;
}

export const sameDevice = (a: DeviceAddress, b: DeviceAddress): boolean =>
  a.idScope === b.idScope && a.registrationId.toLowerCase() === b.registrationId.toLowerCase();

/** A message as rhea decodes it: only what a request can carry matters here. */
export interface AmqpMessage {
  correlation_id?: string | number | Buffer;
  application_properties?: Record<string, unknown>;
  body?: unknown;
}

export type DpsRequest =
  /** The register body: one data section of JSON (§7.3); parsed by the caller, so bad JSON is a DPS 400. */
  | { kind: "register"; body: Buffer }
  | { kind: "operationStatus"; operationId: string }
  | { kind: "unknown"; reason: string };

/**
 * The body's bytes: data sections (concatenated), an amqp-value string or binary. The SDK sends
 * one data section on register and the amqp-value "" on a status request.
 */
export function bodyBytes(body: unknown): Buffer {
  if (body === undefined || body === null) return Buffer.alloc(0);
  if (typeof body === "string") return Buffer.from(body, "utf8");
  if (Buffer.isBuffer(body)) return body;
  if (Array.isArray(body)) return Buffer.concat(body.map(bodyBytes));
  if (typeof body === "object" && "content" in body) return bodyBytes((body as { content: unknown }).content);
  return Buffer.alloc(0);
}

export function requestOf(message: AmqpMessage): DpsRequest {
  const props = message.application_properties ?? {};
  const type = props[OPERATION_TYPE];
  if (type === REGISTER) return { kind: "register", body: bodyBytes(message.body) };
  if (type === GET_OPERATION_STATUS) {
    const operationId = props[OPERATION_ID];
    return typeof operationId === "string" && operationId !== ""
      ? { kind: "operationStatus", operationId }
      : { kind: "unknown", reason: `'${OPERATION_ID}' must name the operation to look up` };
  }
  return {
    kind: "unknown",
    reason: `'${OPERATION_TYPE}' must be ${REGISTER} or ${GET_OPERATION_STATUS}, not ${JSON.stringify(type ?? null)}`,
  };
}

/** The answer to a request (§7.4): the request's correlation id, one data section of JSON, retry-after. */
export function responseOf(
  reply: Exclude<DeviceReply, { kind: "error" }>,
  correlationId: AmqpMessage["correlation_id"],
  operationType: string,
): { correlation_id: AmqpMessage["correlation_id"]; application_properties: Record<string, string>; body: unknown } {
  const application_properties: Record<string, string> = { [OPERATION_TYPE]: operationType };
  if ("status" in reply.body && typeof reply.body.status === "string")
    application_properties[STATUS] = reply.body.status;
  if (reply.kind === "operation" && reply.retryAfter !== undefined) {
    application_properties[RETRY_AFTER] = String(reply.retryAfter);
  }
  return {
    // The same value, so the same AMQP type: the SDK matches a string id only to a string (§7.4).
    correlation_id: sameType(correlationId),
    application_properties,
    body: rhea.message.data_section(Buffer.from(JSON.stringify(reply.body))),
  };
}

/**
 * rhea decodes a uuid and a binary id alike to a Buffer and encodes every Buffer id as a uuid. A
 * uuid has 16 bytes; any other length was binary and goes back as binary. (A 16-byte binary id
 * comes back as a uuid: rhea keeps nothing else to tell them apart.)
 */
function sameType(id: AmqpMessage["correlation_id"]): AmqpMessage["correlation_id"] {
  // rhea's Message typing has no room for a typed (wrapped) value, which it encodes all the same.
  return Buffer.isBuffer(id) && id.length !== 16 ? (rhea.types.wrap_binary(id) as unknown as Buffer) : id;
}

/** An AMQP error condition for a DPS status (§7.5): 429 and 5xx are the ones the SDKs retry. */
export function conditionOf(status: number): string {
  if (status === 429) return "com.microsoft:device-container-throttled";
  if (status >= 500) return "amqp:internal-error";
  switch (status) {
    case 400:
      return "com.microsoft:argument-error";
    case 401:
      return "amqp:unauthorized-access";
    case 404:
      return "amqp:not-found";
    case 412:
      return "com.microsoft:precondition-failed";
    case 413:
      return "amqp:link:message-size-exceeded";
    default:
      return "amqp:not-allowed";
  }
}

export interface Rejection {
  condition: string;
  /** The DPS error body as JSON: the device (and the person reading its log) learns why. */
  description: string;
  info?: Record<string, number>;
}

/** A refused request: the delivery is rejected with the DPS error (§7.5). */
export function rejectionOf(reply: Extract<DeviceReply, { kind: "error" }>): Rejection {
  return {
    condition: conditionOf(reply.status),
    description: JSON.stringify(reply.body),
    ...(reply.retryAfter !== undefined && reply.status >= 429 ? { info: { [RETRY_AFTER]: reply.retryAfter } } : {}),
  };
}
