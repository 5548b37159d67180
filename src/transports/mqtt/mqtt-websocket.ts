// MQTT over WebSocket on the HTTPS port: `GET /$iothub/websocket` with subprotocol `mqtt` (or
// `mqttv3.1`). The same path also carries AMQP (`AMQPWSB10`), so the handler claims an upgrade only
// when the path matches AND the client offers MQTT; transports/websocket-upgrades.ts composes it
// with AMQP's and refuses what neither claims.

import type { IncomingMessage, Server } from "node:http";
import { TLSSocket } from "node:tls";
import { createWebSocketStream, type WebSocket, WebSocketServer } from "ws";
import { peerCertificateChain, peerLeafCertificate } from "../../security/tls-peer.js";
import {
  isIotHubWebSocketPath,
  offeredSubprotocols,
  serveWebSocketUpgrades,
  type WebSocketHandler,
} from "../websocket-upgrades.js";
import { DEFAULT_LIMITS, MqttConnection, type MqttHandler, type MqttLimits, type PeerInfo } from "./mqtt-connection.js";

/** Subprotocols we accept, most preferred first (mqtt.js sends `mqttv3.1` for protocol level 3). */
const SUBPROTOCOLS = ["mqtt", "mqttv3.1"];
/** A WebSocket frame may carry a whole packet plus a few small ones behind it. */
const FRAME_SLACK_BYTES = 1024;

function pickSubprotocol(offered: Iterable<string>): string | false {
  const list = [...offered];
  for (const wanted of SUBPROTOCOLS) {
    const hit = list.find((p) => p.toLowerCase() === wanted);
    if (hit !== undefined) return hit;
  }
  return false;
}

/** Host header without the port (and without the brackets of an IPv6 literal). */
export function hostWithoutPort(host: string | undefined): string | undefined {
  if (!host) return undefined;
  if (host.startsWith("[")) {
    const end = host.indexOf("]");
    return end === -1 ? host : host.slice(1, end);
  }
  const colon = host.indexOf(":");
  return colon === -1 ? host : host.slice(0, colon);
}

function webSocketPeerInfo(req: IncomingMessage): PeerInfo {
  const socket = req.socket;
  return {
    remoteAddress: socket.remoteAddress ?? "",
    get certificateChain() {
      return socket instanceof TLSSocket ? peerCertificateChain(socket) : [];
    },
    get leafCertificate() {
      return socket instanceof TLSSocket ? peerLeafCertificate(socket) : undefined;
    },
    serverName: hostWithoutPort(req.headers.host),
  };
}

export function createMqttWebSocketHandler(
  onConnect: MqttHandler,
  limits: MqttLimits = DEFAULT_LIMITS,
): WebSocketHandler {
  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: true,
    perMessageDeflate: false,
    maxPayload: limits.maxPacketBytes + FRAME_SLACK_BYTES,
    handleProtocols: (offered) => pickSubprotocol(offered),
  });
  let closed = false;

  const onWebSocket = (ws: WebSocket, req: IncomingMessage): void => {
    // createWebSocketStream listens to the first 'error' only; later ones must not go unhandled.
    ws.on("error", () => {});
    const stream = createWebSocketStream(ws);
    new MqttConnection(stream, webSocketPeerInfo(req), onConnect, limits);
  };

  return {
    handleUpgrade(req, socket, head) {
      if (closed || !isIotHubWebSocketPath(req.url) || pickSubprotocol(offeredSubprotocols(req)) === false) {
        return false;
      }
      socket.on("error", () => {}); // a reset during the handshake must not surface as an uncaught error
      wss.handleUpgrade(req, socket, head, onWebSocket);
      return true;
    },
    close() {
      if (closed) return;
      closed = true;
      for (const ws of wss.clients) ws.terminate();
      wss.close();
    },
    connections: () => wss.clients.size,
  };
}

/** Serves MQTT over WebSocket alone on `server` (tests); `provisio serve` composes it with AMQP's. */
export function attachMqttWebSocket(
  server: Server,
  onConnect: MqttHandler,
  limits: MqttLimits = DEFAULT_LIMITS,
): { close(): void } {
  return serveWebSocketUpgrades(server, [createMqttWebSocketHandler(onConnect, limits)]);
}
