// The MQTT-over-TLS listener (8883): asks for a client certificate but never rejects at the TLS
// level (attestation decides per device after CONNECT), and hands every connection to an
// MqttConnection. A failed or stalled handshake only costs that one socket.

import tls, { type TLSSocket } from "node:tls";
import { peerCertificateChain, peerLeafCertificate } from "../../security/tls-peer.js";
import { DEFAULT_LIMITS, MqttConnection, type MqttHandler, type MqttLimits, type PeerInfo } from "./mqtt-connection.js";

export { peerCertificateChain };

/** The certificates are read when a session asks: a hub needs only the leaf, a SAS device none. */
export function tlsPeerInfo(socket: TLSSocket): PeerInfo {
  const servername = socket.servername;
  return {
    remoteAddress: socket.remoteAddress ?? "",
    get certificateChain() {
      return peerCertificateChain(socket);
    },
    get leafCertificate() {
      return peerLeafCertificate(socket);
    },
    serverName: typeof servername === "string" && servername !== "" ? servername : undefined,
  };
}

export function createMqttTlsServer(
  /** Key, certificate and options (security/listener-tls.ts). */
  tlsOptions: tls.TlsOptions,
  onConnect: MqttHandler,
  limits: MqttLimits = DEFAULT_LIMITS,
): tls.Server {
  const server = tls.createServer({
    ...tlsOptions,
    requestCert: true,
    rejectUnauthorized: false,
    handshakeTimeout: limits.connectTimeoutMs,
  });
  server.on("secureConnection", (socket: TLSSocket) => {
    socket.setNoDelay(true);
    new MqttConnection(socket, tlsPeerInfo(socket), onConnect, limits);
  });
  // Handshake failures and handshake timeouts. Node reports a handshake timeout here but leaves
  // the socket open, so it must be destroyed explicitly.
  server.on("tlsClientError", (_err: Error, socket: TLSSocket) => socket.destroy());
  return server;
}
