// AMQP over WebSocket on the HTTPS port (device-api.md §8): `GET /$iothub/websocket` with the
// subprotocol `AMQPWSB10`, next to MQTT's, `GET /` as the C# SDK dials it (its provisioning
// AMQP transport sets no path), and `GET /$servicebus/websocket` as the Event Hubs SDKs dial it. An upgrade is ours only when path and subprotocol match; otherwise
// handleUpgrade returns false and leaves the socket to the next handler (../websocket-upgrades.ts).
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { TLSSocket } from "node:tls";
import { type WebSocket, WebSocketServer } from "ws";
import type { DevicePort } from "../../provisioning/device-port.js";
import { peerCertificateChain } from "../../security/tls-peer.js";
import { isIotHubWebSocketPath, offeredSubprotocols, type WebSocketHandler } from "../websocket-upgrades.js";
import { type AmqpOptions, acceptAmqpDevice, DEFAULT_AMQP_LIMITS } from "./dps-connection.js";

export const AMQP_SUBPROTOCOL = "AMQPWSB10";

const offersAmqp = (req: IncomingMessage): boolean => offeredSubprotocols(req).includes(AMQP_SUBPROTOCOL);
const isRoot = (url: string | undefined): boolean => url === "/" || url?.startsWith("/?") === true;
/** Where the Event Hubs SDKs dial AMQP over WebSockets (a built-in hub's Event Hubs-compatible endpoint). */
const isServiceBusPath = (url: string | undefined): boolean =>
  url?.split("?")[0]?.toLowerCase() === "/$servicebus/websocket";

export function createAmqpWebSocketHandler(port: DevicePort, options: AmqpOptions = {}): WebSocketHandler {
  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: true,
    perMessageDeflate: false,
    maxPayload: (options.limits ?? DEFAULT_AMQP_LIMITS).maxPendingBytes,
    handleProtocols: (offered) => (offered.has(AMQP_SUBPROTOCOL) ? AMQP_SUBPROTOCOL : false),
  });
  let closed = false;

  const onWebSocket = (ws: WebSocket, req: IncomingMessage): void => {
    ws.on("error", () => ws.terminate());
    const socket = req.socket;
    acceptAmqpDevice(
      (container, options) => container.websocket_accept(ws as never, options as never),
      {
        remoteAddress: socket.remoteAddress ?? "",
        certificateChain: () => (socket instanceof TLSSocket ? peerCertificateChain(socket) : []),
        destroy: () => ws.terminate(),
        onBytes: (listener) => ws.on("message", (data: Buffer) => listener(data.length)),
      },
      port,
      { ...options, protocol: "amqpws" },
    );
  };

  return {
    handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
      if (
        closed ||
        !(isIotHubWebSocketPath(req.url) || isRoot(req.url) || isServiceBusPath(req.url)) ||
        !offersAmqp(req)
      ) {
        return false;
      }
      socket.on("error", () => {}); // a reset during the handshake must not surface as an uncaught error
      wss.handleUpgrade(req, socket, head, onWebSocket);
      return true;
    },
    close(): void {
      if (closed) return;
      closed = true;
      for (const ws of wss.clients) ws.terminate();
      wss.close();
    },
    connections: () => wss.clients.size,
  };
}
