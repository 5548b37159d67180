// The Event Hubs-compatible endpoint's messages, as the Event Hubs SDKs read them: an event with
// IoT Hub's annotations (x-opt-sequence-number, x-opt-offset, x-opt-enqueued-time,
// iothub-connection-device-id, …), and the `$management` answers describing the hub and its
// partitions. Pure.
import rhea from "rhea";
import type { AmqpMessage } from "./amqp-hub-messages.js";
import { idValue } from "./amqp-hub-messages.js";
import type { EventHubPartitions, StoredEvent } from "./event-hub-partitions.js";

/** A telemetry message as a reader of the hub's events endpoint receives it. */
export function eventMessage(e: StoredEvent): AmqpMessage {
  const m = e.message;
  const sys = m.properties.system;
  const moduleId = sys["iothub-connection-module-id"];
  return {
    ...(sys.messageId ? { message_id: idValue(sys.messageId) } : {}),
    ...(sys.correlationId ? { correlation_id: idValue(sys.correlationId) } : {}),
    ...(sys.contentType ? { content_type: sys.contentType } : {}),
    ...(sys.contentEncoding ? { content_encoding: sys.contentEncoding } : {}),
    ...(sys.userId ? { user_id: Buffer.from(sys.userId) } : {}),
    application_properties: { ...m.properties.app },
    message_annotations: {
      "x-opt-sequence-number": rhea.types.wrap_long(e.sequenceNumber),
      "x-opt-offset": e.offset,
      "x-opt-enqueued-time": e.enqueuedTime,
      "iothub-connection-device-id": m.deviceId,
      ...(moduleId ? { "iothub-connection-module-id": moduleId } : {}),
      "iothub-enqueuedtime": e.enqueuedTime,
      "iothub-message-source": "Telemetry",
      ...(sys.outputName ? { "iothub-outputname": sys.outputName } : {}),
    },
    body: rhea.message.data_section(m.body),
  } as AmqpMessage;
}

export type ManagementRequest =
  | { kind: "eventhub"; name: string; token?: string }
  | { kind: "partition"; name: string; partition: string; token?: string }
  | { refused: string };

/** A `$management` request: READ of `com.microsoft:eventhub` or `com.microsoft:partition`. */
export function managementRequestOf(message: AmqpMessage): ManagementRequest {
  const app = (message.application_properties ?? {}) as Record<string, unknown>;
  const token = typeof app.security_token === "string" ? app.security_token : undefined;
  if (app.operation !== "READ") return { refused: `operation '${String(app.operation)}' is not READ` };
  const name = String(app.name ?? "");
  if (app.type === "com.microsoft:eventhub") return { kind: "eventhub", name, ...(token ? { token } : {}) };
  if (app.type === "com.microsoft:partition") {
    return { kind: "partition", name, partition: String(app.partition ?? ""), ...(token ? { token } : {}) };
  }
  return { refused: `type '${String(app.type)}' is neither com.microsoft:eventhub nor com.microsoft:partition` };
}

/** The answer to a management request: status as an AMQP int, the body a map. */
export function managementReply(
  request: AmqpMessage,
  status: number,
  description: string,
  body?: Record<string, unknown>,
): AmqpMessage {
  return {
    to: request.reply_to,
    correlation_id: request.message_id,
    application_properties: { "status-code": rhea.types.wrap_int(status), "status-description": description },
    ...(body ? { body } : {}),
  } as AmqpMessage;
}

/** The hub as `getEventHubProperties` reads it. */
export const eventHubInfo = (name: string, partitions: EventHubPartitions): Record<string, unknown> => ({
  name,
  type: "com.microsoft:eventhub",
  created_at: partitions.createdAt,
  partition_count: rhea.types.wrap_int(partitions.ids.length),
  partition_ids: partitions.ids,
});

/** A partition as `getPartitionProperties` reads it. */
export function partitionInfo(name: string, id: string, partitions: EventHubPartitions): Record<string, unknown> {
  const p = partitions.info(id);
  return {
    name,
    type: "com.microsoft:partition",
    partition: id,
    begin_sequence_number: rhea.types.wrap_long(p.begin),
    last_enqueued_sequence_number: rhea.types.wrap_long(p.last),
    last_enqueued_offset: p.lastOffset,
    last_enqueued_time_utc: p.lastTime,
    is_partition_empty: p.empty,
  };
}
