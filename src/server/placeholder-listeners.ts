// A listener for a protocol not served yet still binds its port (the serve contract) and refuses
// politely: AMQP clients get a closed connection.
import { createServer, type Server, type TLSSocket } from "node:tls";
import type { ListenerTls } from "../security/listener-tls.js";

export function createRefusingListener(tls: ListenerTls): Server {
  return createServer(tls, (socket: TLSSocket) => {
    socket.on("error", () => socket.destroy());
    socket.setTimeout(10_000, () => socket.destroy());
    socket.end();
  });
}
