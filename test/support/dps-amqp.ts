// A DPS device speaking AMQP by hand (device-api.md §7) over TLS or WebSockets, with rhea as the
// SDKs use it, for tests that look at what the SDKs hide: SASL outcomes, rejections and their
// conditions, response properties.
import { randomUUID } from "node:crypto";
import rhea, { type Connection, type EventContext } from "rhea";
import WebSocket from "ws";
import type { ProvisioProcess } from "./provisio-process.js";

export type AmqpFlavour = "amqp" | "amqp-ws";
export const AMQP_FLAVOURS: AmqpFlavour[] = ["amqp", "amqp-ws"];

export interface AmqpConnectOptions {
  registrationId: string;
  idScope?: string;
  /** The SAS token: SASL PLAIN. Without one the device skips SASL (X.509 or nothing). */
  password?: string;
  cert?: string;
  key?: string;
  /** The links' address, when a test wants it to differ from the device's. */
  address?: string;
  /** The source address to connect from (127.0.0.x; AMQP over TLS). */
  localAddress?: string;
}

/** What the service did with a request: answered it, or rejected the delivery. */
export type AmqpAnswer =
  | {
      kind: "response";
      correlationId: unknown;
      properties: Record<string, unknown>;
      body: Record<string, unknown>;
    }
  | { kind: "rejected"; condition: string; description: string; info: Record<string, unknown> | undefined };

export interface DpsAmqpDevice {
  /** Resolves when the connection ends (the server closed it, or end()). */
  closed: Promise<void>;
  register(body?: unknown): Promise<AmqpAnswer>;
  poll(operationId: string): Promise<AmqpAnswer>;
  /** Sends any message on the request link and waits for the answer or the rejection. */
  send(message: rhea.Message): Promise<AmqpAnswer>;
  end(): Promise<void>;
}

/** How a connection attempt ended: links attached, or refused on the way (SASL, a link's detach). */
export type AmqpConnectResult = { ok: true; device: DpsAmqpDevice } | { ok: false; error: string };

const TIMEOUT_MS = 10_000;

/** rhea's websocket_connect takes the WebSocket class; ws needs our CA and the subprotocol. */
function webSocketClass(p: ProvisioProcess, o: AmqpConnectOptions) {
  return class extends WebSocket {
    constructor(url: string, protocols: string[]) {
      // servername is passed on to tls.connect; ws's option type leaves it out.
      super(url, protocols, { ca: p.ca, servername: "localhost", cert: o.cert, key: o.key } as WebSocket.ClientOptions);
    }
  };
}

export async function connectDpsAmqp(
  p: ProvisioProcess,
  flavour: AmqpFlavour,
  o: AmqpConnectOptions,
): Promise<AmqpConnectResult> {
  const idScope = o.idScope ?? p.info.idScope;
  const address = o.address ?? `${idScope}/registrations/${o.registrationId}`;
  const container = rhea.create_container({ id: randomUUID() });
  const sasl = o.password ? { username: `${idScope}/registrations/${o.registrationId}`, password: o.password } : {};
  const common = { hostname: "localhost", reconnect: false, ...sasl };
  const connection: Connection =
    flavour === "amqp"
      ? container.connect({
          ...common,
          host: "127.0.0.1",
          port: p.info.ports.amqp,
          transport: "tls",
          ca: p.ca,
          servername: "localhost",
          ...(o.cert ? { cert: o.cert, key: o.key } : {}),
          ...(o.localAddress ? { localAddress: o.localAddress } : {}),
        } as rhea.ConnectionOptions)
      : container.connect({
          ...common,
          connection_details: container.websocket_connect(webSocketClass(p, o) as never)(
            `wss://127.0.0.1:${p.info.ports.https}/$iothub/websocket`,
            ["AMQPWSB10"],
            {},
          ),
        } as unknown as rhea.ConnectionOptions);

  const failed = new Promise<string>((resolve) => {
    const fail = (ctx: EventContext) => {
      // A link's error is on the link, a connection's on the context.
      const e = (ctx.error ?? ctx.receiver?.error ?? ctx.sender?.error) as
        | { condition?: string; description?: string; message?: string }
        | undefined;
      resolve(e?.condition ? `${e.condition}: ${e.description ?? ""}` : (e?.message ?? "disconnected"));
    };
    connection.on("connection_error", fail);
    connection.on("disconnected", fail);
    connection.on("receiver_error", fail);
    connection.on("sender_error", fail);
  });
  connection.on("error", () => {});
  const receiver = connection.open_receiver({ source: { address }, credit_window: 1000, autoaccept: true });
  const sender = connection.open_sender({ target: { address } });
  const attached = Promise.all([
    new Promise((resolve) => receiver.once("receiver_open", resolve)),
    new Promise((resolve) => sender.once("sendable", resolve)),
  ]).then(() => "attached");
  const timeout = new Promise<string>((resolve) => setTimeout(resolve, TIMEOUT_MS, "timed out").unref());
  const outcome = await Promise.race([attached, failed, timeout]);
  if (outcome !== "attached") {
    connection.close();
    return { ok: false, error: outcome };
  }

  const waiting = new Map<string, (a: AmqpAnswer) => void>();
  receiver.on("message", (ctx: EventContext) => {
    const m = ctx.message as rhea.Message;
    const content = (m.body as { content?: Buffer } | undefined)?.content;
    waiting.get(String(m.correlation_id))?.({
      kind: "response",
      correlationId: m.correlation_id,
      properties: m.application_properties ?? {},
      body: content ? (JSON.parse(content.toString()) as Record<string, unknown>) : {},
    });
  });

  const send = (message: rhea.Message): Promise<AmqpAnswer> => {
    const correlationId = String(message.correlation_id ?? randomUUID());
    return new Promise<AmqpAnswer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no answer within 10 s")), TIMEOUT_MS);
      const done = (a: AmqpAnswer) => {
        clearTimeout(timer);
        waiting.delete(correlationId);
        resolve(a);
      };
      waiting.set(correlationId, done);
      const delivery = sender.send({ correlation_id: correlationId, ...message });
      // A rejection arrives as the delivery's outcome (§7.5).
      const onRejected = (ctx: EventContext) => {
        if (ctx.delivery !== delivery) return;
        const e = (ctx.delivery?.remote_state as { error?: Record<string, unknown> } | undefined)?.error ?? {};
        done({
          kind: "rejected",
          condition: String(e.condition),
          description: String(e.description ?? ""),
          info: e.info as Record<string, unknown> | undefined,
        });
      };
      sender.on("rejected", onRejected);
    });
  };

  return {
    ok: true,
    device: {
      closed: new Promise<void>((resolve) => connection.once("disconnected", () => resolve())),
      register: (body = { registrationId: o.registrationId }) =>
        send({
          application_properties: { "iotdps-operation-type": "iotdps-register", "iotdps-forceRegistration": false },
          body: rhea.message.data_section(Buffer.from(JSON.stringify(body))),
        }),
      poll: (operationId) =>
        send({
          application_properties: {
            "iotdps-operation-type": "iotdps-get-operationstatus",
            "iotdps-operation-id": operationId,
          },
          body: "",
        }),
      send,
      end: () =>
        new Promise<void>((resolve) => {
          connection.once("connection_close", () => resolve());
          connection.once("disconnected", () => resolve());
          setTimeout(resolve, 2000).unref();
          connection.close();
        }),
    },
  };
}
