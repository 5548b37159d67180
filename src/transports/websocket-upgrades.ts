// The IoT Hub WebSocket endpoint on the HTTPS port (device-api.md §8): `GET /$iothub/websocket`
// carries MQTT (subprotocol `mqtt`) and AMQP (`AMQPWSB10`). Each protocol offers a handler that
// claims an upgrade only when path and subprotocol are its own; `serveWebSocketUpgrades` asks
// them in turn and refuses what nobody claimed.
import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";

export const IOTHUB_WEBSOCKET_PATH = "/$iothub/websocket";
const ENCODED_PATH = "/%24iothub/websocket";

export interface WebSocketHandler {
  /** Takes the upgrade and returns true if it is this protocol on our path; otherwise returns false and leaves the socket alone. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** Stops taking upgrades and terminates this protocol's open WebSockets. */
  close(): void;
  /** How many of this protocol's WebSockets are open. */
  connections(): number;
}

/** True for `/$iothub/websocket` (also `%24`-encoded), any case, query string ignored. */
export function isIotHubWebSocketPath(url: string | undefined): boolean {
  if (url === undefined) return false;
  const q = url.indexOf("?");
  const path = (q === -1 ? url : url.slice(0, q)).toLowerCase();
  return path === IOTHUB_WEBSOCKET_PATH || path === ENCODED_PATH;
}

export function offeredSubprotocols(req: IncomingMessage): string[] {
  const header = req.headers["sec-websocket-protocol"];
  if (typeof header !== "string") return [];
  return header.split(",").map((p) => p.trim());
}

function refuse(socket: Duplex, status: string): void {
  socket.on("error", () => {});
  if (socket.destroyed) return;
  socket.once("finish", () => socket.destroy());
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

/**
 * Serves `handlers` on `server`'s upgrades. An upgrade none of them claims is refused: 400 on our
 * path (no subprotocol we speak), 404 anywhere else. `close` detaches and closes every handler.
 */
export function serveWebSocketUpgrades(server: Server, handlers: readonly WebSocketHandler[]): { close(): void } {
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    for (const handler of handlers) if (handler.handleUpgrade(req, socket, head)) return;
    refuse(socket, isIotHubWebSocketPath(req.url) ? "400 Bad Request" : "404 Not Found");
  };
  server.on("upgrade", onUpgrade);
  return {
    close() {
      server.removeListener("upgrade", onUpgrade);
      for (const handler of handlers) handler.close();
    },
  };
}
