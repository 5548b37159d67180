// The TLS settings every listener of `provisio serve` shares (HTTPS, MQTT, AMQP), also when the
// server certificate is swapped in later: Server.setSecureContext forgets what it is not given.
import { constants } from "node:crypto";
import type { TlsMaterial } from "./tls-material.js";

export interface ListenerTls {
  /** The ECDSA key and certificate first, then the RSA ones when there are: OpenSSL picks per client. */
  key: string[];
  cert: string[];
  secureOptions: number;
  /** TLS 1.0 and 1.1 never (DPS's minTlsVersion "1.2"), whatever Node's flags say; 1.3 if asked. */
  minVersion: "TLSv1.2" | "TLSv1.3";
}

/**
 * No TLS session resumption (no tickets; Node keeps no server session cache). A resumed session
 * carries the client's leaf certificate but not the intermediates it sent, since OpenSSL stores
 * only the leaf in a session, so an X.509 group device that resumed would be refused as sending
 * only its leaf (behaviors.md §3). Without tickets a full handshake also skips encoding and
 * re-parsing the session (client certificate included) for each of the two tickets TLS 1.3
 * sends: a few hundred microseconds of CPU per connection (bench/, the x509 scenario).
 */
export function listenerTls(
  material: Pick<TlsMaterial, "keyPem" | "certPem" | "rsa">,
  minTlsVersion: "1.2" | "1.3" = "1.2",
): ListenerTls {
  const rsa = material.rsa;
  return {
    key: rsa ? [material.keyPem, rsa.keyPem] : [material.keyPem],
    cert: rsa ? [material.certPem, rsa.certPem] : [material.certPem],
    secureOptions: constants.SSL_OP_NO_TICKET,
    minVersion: minTlsVersion === "1.3" ? "TLSv1.3" : "TLSv1.2",
  };
}
