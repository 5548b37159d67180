// The AMQP baseline: a bare AMQP 1.0-over-TLS server (node:tls + one rhea container) with
// provisio's own server key and certificate and the same TLS options as provisio's AMQP listener.
// SASL PLAIN takes any identity, links are accepted as attached, and every request is accepted and
// answered on the answer link with its correlation id and a trivial `{"status":"assigned"}`. Same
// handshakes, same AMQP framing, no work.
// Usage: node dist/bench/baseline-amqp-server.js <dataDir>; prints {"port":N} on stdout, SIGTERM stops it.
import type { AddressInfo } from "node:net";
import { createServer, type TLSSocket } from "node:tls";
import rhea, { type EventContext } from "rhea";
import { baselineTls } from "./baseline-tls.js";

const dataDir = process.argv[2];
if (!dataDir) {
  process.stderr.write("usage: baseline-amqp-server <dataDir>\n");
  process.exit(2);
}

const REPLY = Buffer.from(JSON.stringify({ status: "assigned" }), "utf8");
const container = rhea.create_container({ id: "baseline", autoaccept: false });
container.sasl_server_mechanisms.enable_plain(() => true);
/** The answer link of each connection (the device's receiver). */
const answers = new WeakMap<rhea.Connection, rhea.Sender>();
container.on("sender_open", (ctx: EventContext) => {
  if (ctx.sender) answers.set(ctx.connection, ctx.sender);
});
container.on("message", (ctx: EventContext) => {
  ctx.delivery?.accept();
  answers.get(ctx.connection)?.send({
    correlation_id: ctx.message?.correlation_id,
    application_properties: { "iotdps-status": "assigned" },
    body: rhea.message.data_section(REPLY),
  });
});
container.on("error", () => {});
container.on("disconnected", () => {});

type Accepting = rhea.Connection & { accept(socket: TLSSocket): rhea.Connection };
const sockets = new Set<TLSSocket>();
const server = createServer({ ...baselineTls(dataDir), handshakeTimeout: 10_000 }, (socket: TLSSocket) => {
  sockets.add(socket);
  socket.setNoDelay(true);
  socket.on("error", () => socket.destroy());
  socket.on("close", () => sockets.delete(socket));
  (container.create_connection({ container_id: "baseline" } as unknown as rhea.ConnectionOptions) as Accepting).accept(
    socket,
  );
});
server.on("tlsClientError", (_err: Error, socket: TLSSocket) => socket.destroy());

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});

process.on("SIGTERM", () => {
  server.close(() => process.exit(0));
  for (const s of sockets) s.destroy();
});
