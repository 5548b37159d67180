// The service's links on a built-in hub's AMQP endpoint (iothub-api.md §7; IoT Hub's service
// endpoint): messages a back end sends to `/messages/devicebound` (`to: /devices/{id}/messages/devicebound`)
// are queued for the device, and feedback records go out on `/messages/serviceBound/feedback`.
// The connection, its CBS tokens and the routing of links are amqp-hub-connection.ts's.
import rhea from "rhea";
import { type AmqpMessage, bodyBytes, idText } from "./amqp-hub-messages.js";
import type { HubRuntime } from "./builtin-hubs.js";
import type { Ack, C2dMessage } from "./c2d-queue.js";

/** A C2D message's body is at most 64 KB (IoT Hub's limit). */
export const MAX_C2D_BYTES = 64 * 1024;

/** A devicebound message as the queue keeps it, or why it cannot be queued. Pure. */
export function deviceboundMessage(
  message: AmqpMessage,
):
  | { deviceId: string; message: Omit<C2dMessage, "enqueuedTime" | "expiryTime"> & { expiryTime?: string } }
  | { refused: string } {
  const to = message.to ?? "";
  const m = /^\/devices\/([^/]+)\/messages\/devicebound$/.exec(to);
  if (!m?.[1]) return { refused: `'to' must be /devices/{deviceId}/messages/devicebound, not '${to}'` };
  const body = bodyBytes(message.body);
  if (body.length > MAX_C2D_BYTES) return { refused: `the body is over ${MAX_C2D_BYTES} bytes` };
  const app = (message.application_properties ?? {}) as Record<string, unknown>;
  const ackText = String(app["iothub-ack"] ?? "none").toLowerCase();
  const ack: Ack = ["positive", "negative", "full"].includes(ackText) ? (ackText as Ack) : "none";
  const properties: Record<string, string> = {};
  for (const [k, v] of Object.entries(app))
    if (k !== "iothub-ack" && v !== undefined && v !== null) properties[k] = String(v);
  const expiry = message.absolute_expiry_time as unknown;
  const expiryTime =
    expiry instanceof Date
      ? expiry.toISOString()
      : typeof expiry === "number"
        ? new Date(expiry).toISOString()
        : undefined;
  const messageId = idText(message.message_id) ?? crypto.randomUUID();
  const correlationId = idText(message.correlation_id);
  return {
    deviceId: decodeURIComponent(m[1]),
    message: {
      messageId,
      ...(correlationId ? { correlationId } : {}),
      to,
      ack,
      properties,
      ...(message.content_type ? { contentType: String(message.content_type) } : {}),
      ...(message.content_encoding ? { contentEncoding: String(message.content_encoding) } : {}),
      ...(expiryTime ? { expiryTime } : {}),
      body,
    },
  };
}

/** Queues a back end's message for its device, or rejects the delivery with IoT Hub's reason. */
export function acceptDevicebound(rt: HubRuntime, message: AmqpMessage, delivery: rhea.Delivery): void {
  const parsed = deviceboundMessage(message);
  if ("refused" in parsed) {
    delivery.reject({ condition: "amqp:invalid-field", description: parsed.refused });
    return;
  }
  rt.registry.find(parsed.deviceId).then(
    (rec) => {
      if (!rec) {
        return delivery.reject({
          condition: "amqp:not-found",
          description: `DeviceNotFound: device '${parsed.deviceId}' is not registered in this hub`,
        });
      }
      if (!rt.c2d.enqueue(parsed.deviceId, parsed.message)) {
        return delivery.reject({
          condition: "amqp:resource-limit-exceeded",
          description: `DeviceMaximumQueueDepthExceeded: device '${parsed.deviceId}' has 50 messages waiting`,
        });
      }
      delivery.accept();
      rt.sessions.cloudToDeviceWaiting(parsed.deviceId);
    },
    () => delivery.reject({ condition: "amqp:internal-error", description: "the hub's registry failed" }),
  );
}

/** Sends the hub's feedback batches on the link until the returned function is called. */
export function sendFeedback(rt: HubRuntime, link: rhea.Sender): () => void {
  return rt.feedback.listen((batch) =>
    link.send({
      message_id: crypto.randomUUID(),
      content_type: "application/vnd.microsoft.iothub.feedback.json",
      // A data section, as IoT Hub sends feedback (the SDKs read the message's data from it).
      body: rhea.message.data_section(Buffer.from(JSON.stringify(batch))),
    } as rhea.Message),
  );
}
