// Listeners for protocols not served yet still bind their port (the serve contract) and refuse
// politely: MQTT clients get CONNACK "server unavailable", AMQP clients a closed connection.
import { createServer, type Server, type TLSSocket } from "node:tls";
import type { ListenerTls } from "../security/listener-tls.js";

// CONNACK, remaining length 2, no session present, return code 3 (server unavailable).
const CONNACK_SERVER_UNAVAILABLE = Buffer.from([0x20, 0x02, 0x00, 0x03]);

export function createRefusingListener(tls: ListenerTls, protocol: "mqtt" | "amqp"): Server {
  return createServer(tls, (socket: TLSSocket) => {
    socket.on("error", () => socket.destroy());
    socket.setTimeout(10_000, () => socket.destroy());
    if (protocol === "mqtt") socket.once("data", () => socket.end(CONNACK_SERVER_UNAVAILABLE));
    else socket.end();
  });
}
