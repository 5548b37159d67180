// The certificates a TLS client presented, leaf first, for every transport.
//
// Not getPeerX509Certificate(): on Node 20 it builds each issuer link by taking the intermediate
// out of the TLS session's chain and never frees it, so every connection that sent an
// intermediate leaked it (~5 KB each; RSS grew without bound under X.509 load). It also made the
// intermediates readable once per connection only. getPeerCertificate(true) copies the chain and
// leaves the session alone; the copy costs more (~470 vs ~340 µs with one intermediate).
import type { DetailedPeerCertificate, TLSSocket } from "node:tls";

/** Longest chain copied out of a handshake; real device chains are 1-4 long. */
const MAX_CHAIN = 16;

// A keep-alive HTTPS connection asks once per request: what was read is kept with its socket.
const chains = new WeakMap<TLSSocket, Buffer[]>();
const leaves = new WeakMap<TLSSocket, Buffer | undefined>();

/** DER certificates the peer presented, leaf first ([] when none). */
export function peerCertificateChain(socket: TLSSocket): Buffer[] {
  const known = chains.get(socket);
  if (known) return known;
  // A socket without TLS (an in-process request) presents no certificate.
  if (typeof socket.getPeerCertificate !== "function") return [];
  // `{}` when the client sent no certificate, null once the socket is gone.
  let cert: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true) ?? undefined;
  const chain: Buffer[] = [];
  while (cert?.raw && chain.length < MAX_CHAIN) {
    const der = cert.raw;
    if (chain.some((seen) => seen.equals(der))) break; // a self-issued certificate points at itself
    chain.push(der);
    cert = cert.issuerCertificate;
  }
  chains.set(socket, chain);
  return chain;
}

/**
 * The leaf alone (`undefined` when none), for a hub matching a device's own certificate: the
 * abbreviated getPeerCertificate copies no intermediate (~130 µs instead of ~470).
 */
export function peerLeafCertificate(socket: TLSSocket): Buffer | undefined {
  const known = chains.get(socket);
  if (known) return known[0];
  if (leaves.has(socket)) return leaves.get(socket);
  if (typeof socket.getPeerCertificate !== "function") return undefined;
  const leaf = socket.getPeerCertificate(false)?.raw ?? undefined;
  leaves.set(socket, leaf);
  return leaf;
}
