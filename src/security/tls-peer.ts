// The certificates a TLS client presented, leaf first, for every transport.
// getPeerX509Certificate() and its issuerCertificate links walk the chain the client sent at a
// tenth of the cost of getPeerCertificate(true) (which builds a JS object of every field), and
// hand over parsed certificates that attestation then need not parse again.
import type { TLSSocket } from "node:tls";
import { rememberParsed } from "../attestation/parsed-certificates.js";

/** Longest chain copied out of a handshake; real device chains are 1-4 long. */
const MAX_CHAIN = 16;

// Node 20 hands the client's intermediates out once per connection: building the issuer links
// removes them from the TLS session, and every later call sees the leaf alone. A keep-alive
// HTTPS connection asks once per request, so the chain is kept with its socket.
const chains = new WeakMap<TLSSocket, Buffer[]>();

/** DER certificates the peer presented, leaf first ([] when none). */
export function peerCertificateChain(socket: TLSSocket): Buffer[] {
  const known = chains.get(socket);
  if (known) return known;
  let cert = socket.getPeerX509Certificate?.();
  const chain: Buffer[] = [];
  while (cert && chain.length < MAX_CHAIN) {
    const der = cert.raw;
    if (chain.some((seen) => seen.equals(der))) break; // a self-issued certificate points at itself
    rememberParsed(der, cert);
    chain.push(der);
    cert = cert.issuerCertificate;
  }
  chains.set(socket, chain);
  return chain;
}
