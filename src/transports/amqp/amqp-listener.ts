// The AMQP-over-TLS listener (5671): asks for a client certificate but never rejects at the TLS
// level (an X.509 device is judged after the handshake, a SAS device sends none), and hands every
// connection to its own DPS session (dps-connection.ts). A failed or stalled handshake costs only
// that socket.
import tls, { type TLSSocket } from "node:tls";
import type { DevicePort } from "../../provisioning/device-port.js";
import { peerCertificateChain } from "../../security/tls-peer.js";
import { type AmqpOptions, acceptAmqpDevice, acceptSocket } from "./dps-connection.js";

/** How long a TLS handshake may take. */
const HANDSHAKE_TIMEOUT_MS = 10_000;

export function createAmqpTlsServer(
  /** Key, certificate and options (security/listener-tls.ts). */
  tlsOptions: tls.TlsOptions,
  port: DevicePort,
  options: AmqpOptions = {},
): tls.Server {
  const server = tls.createServer({
    ...tlsOptions,
    requestCert: true,
    rejectUnauthorized: false,
    handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
  });
  server.on("secureConnection", (socket: TLSSocket) => {
    socket.setNoDelay(true);
    socket.on("error", () => socket.destroy());
    acceptAmqpDevice(
      acceptSocket(socket),
      {
        remoteAddress: socket.remoteAddress ?? "",
        certificateChain: () => peerCertificateChain(socket),
        destroy: () => socket.destroy(),
        onBytes: (listener) => socket.on("data", (chunk: Buffer) => listener(chunk.length)),
      },
      port,
      { ...options, protocol: "amqp" },
    );
  });
  // Handshake failures and timeouts: Node reports a handshake timeout here but leaves the socket open.
  server.on("tlsClientError", (_err: Error, socket: TLSSocket) => socket.destroy());
  return server;
}
