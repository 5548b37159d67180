// Certificates already parsed by whoever received them (the TLS layer), keyed by their DER
// buffer, so attestation does not parse the same bytes twice. Weak: gone with the buffer.
import type { X509Certificate } from "node:crypto";

const parsed = new WeakMap<Buffer, X509Certificate>();

export const rememberParsed = (der: Buffer, cert: X509Certificate): void => {
  parsed.set(der, cert);
};

export const parsedOf = (der: Buffer): X509Certificate | undefined => parsed.get(der);
