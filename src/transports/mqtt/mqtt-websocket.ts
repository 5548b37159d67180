// MQTT over WebSocket on the HTTPS port: `GET /$iothub/websocket` with subprotocol `mqtt`.
// The same path also carries AMQP (`AMQPWSB10`), so an upgrade is only ours when the path matches
// AND the client offers `mqtt` (or `mqttv3.1`); anything else is left to other upgrade handlers.
//
// Upgrade handling choice: `createMqttWebSocketHandler` returns `handleUpgrade(req, socket, head)`
// which returns false, without touching the socket, when the upgrade is not ours — the owner of
// the HTTPS server composes it with other handlers. `attachMqttWebSocket` is the stand-alone
// convenience: it registers an `upgrade` listener and refuses an upgrade nobody claimed
// (404 for other paths, 400 for our path without an MQTT subprotocol) only while it is the
// server's sole `upgrade` listener; once other listeners exist, rejecting is their job.

import type { IncomingMessage } from "node:http";
import type https from "node:https";
import type { Duplex } from "node:stream";
import { TLSSocket } from "node:tls";
import { createWebSocketStream, type WebSocket, WebSocketServer } from "ws";
import { peerCertificateChain, peerLeafCertificate } from "../../security/tls-peer.js";
import { DEFAULT_LIMITS, MqttConnection, type MqttHandler, type MqttLimits, type PeerInfo } from "./mqtt-connection.js";

export const MQTT_WEBSOCKET_PATH = "/$iothub/websocket";
const ENCODED_PATH = "/%24iothub/websocket";
/** Subprotocols we accept, most preferred first (mqtt.js sends `mqttv3.1` for protocol level 3). */
const SUBPROTOCOLS = ["mqtt", "mqttv3.1"];
/** A WebSocket frame may carry a whole packet plus a few small ones behind it. */
const FRAME_SLACK_BYTES = 1024;

export interface MqttWebSocketHandler {
  /** Takes the upgrade and returns true if it is MQTT on our path; otherwise returns false and leaves the socket alone. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** Stops taking upgrades (detaches from the server if attached) and terminates open MQTT WebSockets. */
  close(): void;
}

/** True for `/$iothub/websocket` (also `%24`-encoded), any case, query string ignored. */
export function isMqttWebSocketPath(url: string | undefined): boolean {
  if (url === undefined) return false;
  const q = url.indexOf("?");
  const path = (q === -1 ? url : url.slice(0, q)).toLowerCase();
  return path === MQTT_WEBSOCKET_PATH || path === ENCODED_PATH;
}

function offeredSubprotocols(req: IncomingMessage): string[] {
  const header = req.headers["sec-websocket-protocol"];
  if (typeof header !== "string") return [];
  return header.split(",").map((p) => p.trim());
}

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

function refuse(socket: Duplex, status: string): void {
  socket.on("error", () => {});
  if (socket.destroyed) return;
  socket.once("finish", () => socket.destroy());
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

export function createMqttWebSocketHandler(
  onConnect: MqttHandler,
  limits: MqttLimits = DEFAULT_LIMITS,
): MqttWebSocketHandler {
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
      if (closed || !isMqttWebSocketPath(req.url) || pickSubprotocol(offeredSubprotocols(req)) === false) {
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
  };
}

/**
 * Serves MQTT over WebSocket on `server`. Unclaimed upgrades get a 404 (400 on our path without
 * an MQTT subprotocol) only while this is the server's only `upgrade` listener.
 */
export function attachMqttWebSocket(
  server: https.Server,
  onConnect: MqttHandler,
  limits: MqttLimits = DEFAULT_LIMITS,
): MqttWebSocketHandler {
  const handler = createMqttWebSocketHandler(onConnect, limits);
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (handler.handleUpgrade(req, socket, head)) return;
    if (server.listenerCount("upgrade") > 1) return;
    refuse(socket, isMqttWebSocketPath(req.url) ? "400 Bad Request" : "404 Not Found");
  };
  server.on("upgrade", onUpgrade);
  return {
    handleUpgrade: handler.handleUpgrade,
    close() {
      server.removeListener("upgrade", onUpgrade);
      handler.close();
    },
  };
}
