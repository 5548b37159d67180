// The MQTT-over-TLS listener (8883): asks for a client certificate but never rejects at the TLS
// level (attestation decides per device after CONNECT), and hands every connection to an
// MqttConnection. A failed or stalled handshake only costs that one socket.

import tls, { type DetailedPeerCertificate, type TLSSocket } from "node:tls";
import { DEFAULT_LIMITS, MqttConnection, type MqttHandler, type MqttLimits, type PeerInfo } from "./mqtt-connection.js";

/** Longest chain copied out of a handshake; real device chains are 1-4 long. */
const MAX_CHAIN = 16;

/**
 * The DER certificates the peer presented, leaf first ([] when none). Walks Node's
 * `issuerCertificate` links, stopping where a self-issued certificate points at itself.
 * Note: Node completes the chain from the server context's trust store where it can, so a
 * root the client did not send may appear at the end when it is in that store.
 */
export function peerCertificateChain(socket: TLSSocket): Buffer[] {
  let cert: DetailedPeerCertificate | undefined;
  try {
    cert = socket.getPeerCertificate(true);
  } catch {
    return []; // the socket went away mid-handshake
  }
  const chain: Buffer[] = [];
  while (cert?.raw && chain.length < MAX_CHAIN) {
    chain.push(cert.raw);
    const next: DetailedPeerCertificate | undefined = cert.issuerCertificate;
    if (!next || next === cert || next.raw?.equals(cert.raw)) break;
    if (chain.some((der) => next.raw?.equals(der))) break; // any other loop
    cert = next;
  }
  return chain;
}

export function tlsPeerInfo(socket: TLSSocket): PeerInfo {
  const servername = socket.servername;
  return {
    remoteAddress: socket.remoteAddress ?? "",
    certificateChain: peerCertificateChain(socket),
    serverName: typeof servername === "string" && servername !== "" ? servername : undefined,
  };
}

export function createMqttTlsServer(
  tlsOptions: { key: string; cert: string },
  onConnect: MqttHandler,
  limits: MqttLimits = DEFAULT_LIMITS,
): tls.Server {
  const server = tls.createServer({
    key: tlsOptions.key,
    cert: tlsOptions.cert,
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
