// The MQTT baseline: a bare MQTT-over-TLS server (node:tls + mqtt-packet) with provisio's own
// server key and certificate and the same TLS options as provisio's MQTT listener (listenerTls: no
// session tickets; requestCert, no rejection, Nagle off). It answers CONNECT with CONNACK 0, SUBSCRIBE with SUBACK, every QoS 1
// PUBLISH with PUBACK, and a request publish with a trivial `$dps/registrations/res/200/?$rid=…`
// `{"status":"assigned"}`. Same handshakes, same MQTT framing, no work.
// Usage: node dist/bench/baseline-mqtt-server.js <dataDir>; prints {"port":N} on stdout, SIGTERM stops it.
import type { AddressInfo } from "node:net";
import { createServer, type TLSSocket } from "node:tls";
import mqttPacket, { type Packet } from "mqtt-packet";
import { baselineTls } from "./baseline-tls.js";

const dataDir = process.argv[2];
if (!dataDir) {
  process.stderr.write("usage: baseline-mqtt-server <dataDir>\n");
  process.exit(2);
}

const REPLY = Buffer.from(JSON.stringify({ status: "assigned" }), "utf8");
const CONNACK = mqttPacket.generate({ cmd: "connack", returnCode: 0, sessionPresent: false });
const PINGRESP = mqttPacket.generate({ cmd: "pingresp" });

/** `$rid` of a request topic (`…/?$rid=…[&…]`), or undefined. */
function ridOf(topic: string): string | undefined {
  const at = topic.indexOf("?$rid=");
  if (at < 0) return undefined;
  const end = topic.indexOf("&", at);
  return topic.slice(at + 6, end < 0 ? undefined : end);
}

const sockets = new Set<TLSSocket>();

const server = createServer(
  {
    ...baselineTls(dataDir),
    handshakeTimeout: 10_000,
  },
  (socket: TLSSocket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    parser.on("packet", (p: Packet) => {
      switch (p.cmd) {
        case "connect":
          socket.write(CONNACK);
          return;
        case "subscribe":
          socket.write(
            mqttPacket.generate({
              cmd: "suback",
              messageId: p.messageId ?? 0,
              granted: p.subscriptions.map((s) => Math.min(s.qos, 1)),
            }),
          );
          return;
        case "publish": {
          if (p.qos === 1 && p.messageId !== undefined) {
            socket.write(mqttPacket.generate({ cmd: "puback", messageId: p.messageId }));
          }
          const rid = ridOf(p.topic);
          if (rid === undefined) return;
          socket.write(
            mqttPacket.generate({
              cmd: "publish",
              topic: `$dps/registrations/res/200/?$rid=${rid}`,
              payload: REPLY,
              qos: 0,
              dup: false,
              retain: false,
            }),
          );
          return;
        }
        case "unsubscribe":
          socket.write(mqttPacket.generate({ cmd: "unsuback", messageId: p.messageId ?? 0, granted: [] }));
          return;
        case "pingreq":
          socket.write(PINGRESP);
          return;
        case "disconnect":
          socket.end();
          return;
        default:
          return;
      }
    });
    parser.on("error", () => socket.destroy());
    socket.on("data", (chunk: Buffer) => parser.parse(chunk));
    socket.on("error", () => socket.destroy());
    socket.on("close", () => sockets.delete(socket));
  },
);
server.on("tlsClientError", (_err: Error, socket: TLSSocket) => socket.destroy());

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});

process.on("SIGTERM", () => {
  server.close(() => process.exit(0));
  for (const s of sockets) s.destroy();
});
