// IoT Hub's AMQP messages, as the device SDKs send and read them: telemetry in, cloud-to-device
// messages out, twin requests and answers on the twin link (operation/resource/status/version
// annotations), direct method calls and answers (IoThub-methodname, IoThub-status), and CBS
// put-token. Pure: rhea's message shapes in, rhea's message shapes out.
import rhea from "rhea";
import type { Delivery } from "./c2d-queue.js";
import type { MessageProperties } from "./property-bag.js";

export type AmqpMessage = rhea.Message & { body?: unknown };

/** IoT Hub's bound on a device-to-cloud message. */
export const MAX_TELEMETRY_BYTES = 256 * 1024;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The message format of a batch: each data section of its body is a whole encoded message. */
export const BATCH_FORMAT = 0x80013700;

/** The bytes of an AMQP body: its data sections end to end, a Buffer, a string, or a value as JSON. */
export function bodyBytes(body: unknown): Buffer {
  if (Buffer.isBuffer(body)) return body;
  const content = (body as { content?: unknown } | undefined)?.content;
  if (Buffer.isBuffer(content)) return content;
  if (Array.isArray(content) && content.every((c) => Buffer.isBuffer(c))) return Buffer.concat(content);
  if (typeof body === "string") return Buffer.from(body);
  return body === undefined || body === null ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body));
}

/** A message id or correlation id as text: a uuid in its usual form, binary as hex. */
export function idText(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (Buffer.isBuffer(v)) return v.length === 16 ? rhea.uuid_to_string(v) : v.toString("hex");
  return String(v);
}

/** An id to send: uuid-shaped text goes as the AMQP uuid type, as IoT Hub sends it. */
export const idValue = (text: string): string | Buffer => (UUID.test(text) ? rhea.string_to_uuid(text) : text);

const dateText = (v: unknown): string | undefined =>
  v instanceof Date ? v.toISOString() : typeof v === "number" ? new Date(v).toISOString() : undefined;

/** A device-to-cloud message's properties in the form every transport shares (property-bag.ts). */
export function telemetryProperties(message: AmqpMessage): MessageProperties {
  const out: MessageProperties = { system: {}, app: {} };
  const set = (k: string, v: string | undefined) => {
    if (v !== undefined && v !== "") out.system[k] = v;
  };
  set("messageId", idText(message.message_id));
  set("correlationId", idText(message.correlation_id));
  set("contentType", message.content_type === undefined ? undefined : String(message.content_type));
  set("contentEncoding", message.content_encoding === undefined ? undefined : String(message.content_encoding));
  const userId = message.user_id as unknown;
  set("userId", Buffer.isBuffer(userId) ? userId.toString("utf8") : userId === undefined ? undefined : String(userId));
  set("to", message.to === undefined ? undefined : String(message.to));
  set("expiryTimeUtc", dateText(message.absolute_expiry_time));
  const app = (message.application_properties ?? {}) as Record<string, unknown>;
  for (const [k, v] of Object.entries(app)) {
    if (v === undefined || v === null) continue;
    // A module's output (sendOutputEvent) names itself in this property (iothub-api.md §6.4's `$.on`).
    if (k === "iothub-outputname") set("outputName", String(v));
    else out.app[k] = String(v);
  }
  return out;
}

/**
 * The messages a transfer carries: itself, or, in IoT Hub's batch format (the C SDK sends
 * telemetry so), the messages encoded in its data sections. Throws on a section that is no message.
 */
export function unbatch(message: AmqpMessage | Buffer, format: number | undefined): AmqpMessage[] {
  // rhea decodes only format 0: any other arrives as the transfer's bytes.
  const outer = Buffer.isBuffer(message) ? (rhea.message.decode(message) as unknown as AmqpMessage) : message;
  if (format !== BATCH_FORMAT) return [outer];
  const content = (outer.body as { content?: unknown } | undefined)?.content;
  const sections = Array.isArray(content) ? content : content === undefined ? [] : [content];
  return sections.map((section) => {
    if (!Buffer.isBuffer(section)) throw new Error("a batch's body is data sections, each an encoded message");
    return rhea.message.decode(section) as unknown as AmqpMessage;
  });
}

/** A cloud-to-device message as a device receives it on `/devices/{id}/messages/devicebound`. */
export function cloudToDeviceMessage(d: Delivery): AmqpMessage {
  const m = d.message;
  return {
    message_id: idValue(m.messageId),
    to: m.to,
    ...(m.correlationId ? { correlation_id: idValue(m.correlationId) } : {}),
    ...(m.userId ? { user_id: Buffer.from(m.userId) } : {}),
    absolute_expiry_time: new Date(m.expiryTime),
    ...(m.contentType ? { content_type: m.contentType } : {}),
    ...(m.contentEncoding ? { content_encoding: m.contentEncoding } : {}),
    application_properties: { ...m.properties, "iothub-ack": m.ack },
    message_annotations: {
      "iothub-enqueuedtime": new Date(m.enqueuedTime),
      "iothub-deliverycount": rhea.types.wrap_int(d.deliveryCount),
    },
    body: rhea.message.data_section(m.body),
  } as AmqpMessage;
}

export type TwinRequest =
  | { kind: "get" }
  | { kind: "patchReported"; body: Buffer }
  | { kind: "subscribeDesired" }
  | { kind: "unsubscribeDesired" }
  | { kind: "unknown"; reason: string };

const DESIRED_NOTIFICATIONS = "/notifications/twin/properties/desired";

/** What a message on the twin link asks (its `operation` and `resource` annotations). */
export function twinRequestOf(message: AmqpMessage): TwinRequest {
  const annotations = (message.message_annotations ?? {}) as Record<string, unknown>;
  const operation = String(annotations.operation ?? "");
  const resource = annotations.resource === undefined ? undefined : String(annotations.resource);
  if (operation === "GET" && resource === undefined) return { kind: "get" };
  if (operation === "PATCH" && resource === "/properties/reported") {
    return { kind: "patchReported", body: bodyBytes(message.body) };
  }
  if (operation === "PUT" && resource === DESIRED_NOTIFICATIONS) return { kind: "subscribeDesired" };
  if (operation === "DELETE" && resource === DESIRED_NOTIFICATIONS) return { kind: "unsubscribeDesired" };
  return {
    kind: "unknown",
    reason: `operation '${operation}' on resource '${resource ?? ""}' is not one the twin link serves (GET; PATCH /properties/reported; PUT or DELETE ${DESIRED_NOTIFICATIONS})`,
  };
}

/** The answer to a twin request: the request's correlation id, `status` and `version` annotations. */
export function twinResponse(correlationId: unknown, status: number, body: string, version?: number): AmqpMessage {
  return {
    correlation_id: correlationId,
    message_annotations: {
      status: rhea.types.wrap_int(status),
      ...(version !== undefined ? { version: rhea.types.wrap_long(version) } : {}),
    },
    body: rhea.message.data_section(Buffer.from(body)),
  } as AmqpMessage;
}

/** A desired-property change pushed on the twin link: no correlation id, the patch as the body. */
export function desiredPush(patch: unknown, version: number): AmqpMessage {
  return {
    message_annotations: { version: rhea.types.wrap_long(version) },
    body: rhea.message.data_section(Buffer.from(JSON.stringify(patch))),
  } as AmqpMessage;
}

/** A direct method call on the methods link; `requestId` comes back as the answer's correlation id. */
export function methodRequest(requestId: string, name: string, payload: string): AmqpMessage {
  return {
    correlation_id: idValue(requestId),
    application_properties: { "IoThub-methodname": name },
    body: rhea.message.data_section(Buffer.from(payload)),
  } as AmqpMessage;
}

/** A device's answer to a method call, or why it is not one. */
export function methodResponseOf(
  message: AmqpMessage,
): { requestId: string; status: number; body: Buffer } | { refused: string } {
  const requestId = idText(message.correlation_id);
  const app = (message.application_properties ?? {}) as Record<string, unknown>;
  const status = Number(app["IoThub-status"]);
  if (!requestId) return { refused: "a method answer needs the call's correlation id" };
  if (!Number.isInteger(status)) return { refused: "a method answer needs an integer 'IoThub-status' property" };
  return { requestId, status, body: bodyBytes(message.body) };
}

/** A CBS `put-token` request (AMQP claims-based security): the token and the audience it is for. */
export function putTokenOf(message: AmqpMessage): { token: string; audience: string } | { refused: string } {
  const app = (message.application_properties ?? {}) as Record<string, unknown>;
  if (app.operation !== "put-token") return { refused: `unsupported CBS operation '${String(app.operation)}'` };
  const token = bodyBytes(message.body).toString("utf8");
  if (!token) return { refused: "put-token carries the token as its body" };
  return { token, audience: String(app.name ?? "") };
}

/** CBS's answer: `status-code` as an AMQP int (uAMQP reads it as one) and a description. */
export function cbsResponse(request: AmqpMessage, status: number, description: string): AmqpMessage {
  return {
    to: request.reply_to,
    correlation_id: request.message_id,
    application_properties: {
      "status-code": rhea.types.wrap_int(status),
      "status-description": description,
    },
    body: "",
  } as AmqpMessage;
}
