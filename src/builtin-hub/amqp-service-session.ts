// A back end's AMQP connection to a built-in hub (iothub-api.md §7; IoT Hub's service AMQP
// endpoint), taken over from the AMQP listener when the open frame names the hub: CBS `put-token`
// on `$cbs` with a hub policy's SAS token, then a sender link to `/messages/devicebound` whose
// messages (`to: /devices/{id}/messages/devicebound`) are queued for the device, and the feedback
// receiver on `/messages/serviceBound/feedback`.

import type { EventContext } from "rhea";
import rhea from "rhea";
import { ProvisioError } from "../domain/errors.js";
import type { HubRuntime } from "./builtin-hubs.js";
import type { Ack, C2dMessage } from "./c2d-queue.js";
import { authenticateService } from "./hub-auth.js";

const CBS = "$cbs";
const DEVICEBOUND = "/messages/devicebound";
const FEEDBACK = "/messages/serviceBound/feedback";
/** A C2D message's body is at most 64 KB (IoT Hub's limit). */
export const MAX_C2D_BYTES = 64 * 1024;

type AmqpMessage = rhea.Message & { body?: unknown };

/** The bytes of an AMQP body: a data section, a Buffer, a string, or a value as JSON. */
export function bodyBytes(body: unknown): Buffer {
  if (Buffer.isBuffer(body)) return body;
  const content = (body as { content?: unknown } | undefined)?.content;
  if (Buffer.isBuffer(content)) return content;
  if (typeof body === "string") return Buffer.from(body);
  return body === undefined || body === null ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body));
}

const text = (v: unknown): string | undefined =>
  v === undefined || v === null ? undefined : Buffer.isBuffer(v) ? v.toString("hex") : String(v);

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
  const messageId = text(message.message_id) ?? crypto.randomUUID();
  const correlationId = text(message.correlation_id);
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

/** Takes over the connection's links and messages (its close stays with the listener). */
export function serveHubService(connection: rhea.Connection, rt: HubRuntime, hooks: { delivered(): void }): void {
  let authorized = false;
  let cbsReplies: rhea.Sender | undefined;
  const stops: (() => void)[] = [];
  const mirror = (link: rhea.Sender | rhea.Receiver) => {
    if (link.source) link.set_source(link.source);
    if (link.target) link.set_target(link.target);
  };
  const refuse = (link: rhea.Sender | rhea.Receiver, why: string) =>
    link.close({ condition: "amqp:unauthorized-access", description: why });

  connection.on("receiver_open", (ctx: EventContext) => {
    const link = ctx.receiver as rhea.Receiver;
    const address = link.target?.address ?? "";
    if (address !== CBS && address !== DEVICEBOUND) {
      return link.close({ condition: "amqp:not-found", description: `no node '${address}' on this hub` });
    }
    if (address === DEVICEBOUND && !authorized) return refuse(link, "put a token on $cbs first");
    mirror(link);
  });
  connection.on("sender_open", (ctx: EventContext) => {
    const link = ctx.sender as rhea.Sender;
    const address = link.source?.address ?? "";
    if (address === CBS) {
      mirror(link);
      cbsReplies = link;
      return;
    }
    if (address !== FEEDBACK) {
      return link.close({ condition: "amqp:not-found", description: `no node '${address}' on this hub` });
    }
    if (!authorized) return refuse(link, "put a token on $cbs first");
    mirror(link);
    stops.push(
      rt.feedback.listen((batch) =>
        link.send({
          message_id: crypto.randomUUID(),
          content_type: "application/vnd.microsoft.iothub.feedback.json",
          // A data section, as IoT Hub sends feedback (the SDKs read the message's data from it).
          body: rhea.message.data_section(Buffer.from(JSON.stringify(batch))),
        } as rhea.Message),
      ),
    );
  });
  connection.on("connection_close", () => {
    for (const stop of stops) stop();
  });
  connection.on("disconnected", () => {
    for (const stop of stops) stop();
  });

  connection.on("message", (ctx: EventContext) => {
    hooks.delivered();
    const delivery = ctx.delivery as rhea.Delivery;
    const message = ctx.message as AmqpMessage;
    const address = (ctx.receiver as rhea.Receiver | undefined)?.target?.address;
    if (address === CBS) return putToken(message, delivery);
    const parsed = deviceboundMessage(message);
    if ("refused" in parsed) {
      return delivery.reject({ condition: "amqp:invalid-field", description: parsed.refused });
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
  });

  /** CBS (AMQP claims-based security): the token authorizes the connection for ServiceConnect. */
  function putToken(message: AmqpMessage, delivery: rhea.Delivery): void {
    const app = (message.application_properties ?? {}) as Record<string, unknown>;
    let status = 200;
    let description = "OK";
    if (app.operation !== "put-token") {
      status = 400;
      description = `unsupported CBS operation '${String(app.operation)}'`;
    } else {
      try {
        authenticateService(bodyBytes(message.body).toString("utf8"), rt.hub, "ServiceConnect");
        authorized = true;
      } catch (err) {
        status = 401;
        description = err instanceof ProvisioError ? err.message : "the token is not valid";
      }
    }
    delivery.accept();
    cbsReplies?.send({
      to: message.reply_to,
      correlation_id: message.message_id,
      application_properties: { "status-code": status, "status-description": description },
      body: "",
    } as rhea.Message);
  }
}
