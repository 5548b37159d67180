// Certificate facts DPS reports for an uploaded certificate (service-api.md §4.3).
import { createHash, X509Certificate } from "node:crypto";
import type { X509CertificateInfo } from "../domain/enrollment.js";

/** Parse PEM text or base64 DER; `undefined` when it is neither. */
export function parseCertificate(text: string): X509Certificate | undefined {
  const trimmed = text.trim();
  try {
    if (trimmed.includes("-----BEGIN CERTIFICATE-----")) return new X509Certificate(trimmed);
    if (!/^[A-Za-z0-9+/=\s]+$/.test(trimmed)) return undefined;
    return new X509Certificate(Buffer.from(trimmed, "base64"));
  } catch {
    return undefined;
  }
}

/** Node lists RDNs one a line, most general first; DPS shows them RFC 4514 style, CN first. */
export const distinguishedName = (nodeName: string): string => nodeName.split("\n").reverse().join(", ");

const isoSeconds = (nodeDate: string): string => `${new Date(nodeDate).toISOString().slice(0, 19)}Z`;

export function certificateInfo(cert: X509Certificate): X509CertificateInfo {
  return {
    subjectName: distinguishedName(cert.subject),
    sha1Thumbprint: cert.fingerprint.replaceAll(":", ""),
    sha256Thumbprint: cert.fingerprint256.replaceAll(":", ""),
    issuerName: distinguishedName(cert.issuer),
    notBeforeUtc: isoSeconds(cert.validFrom),
    notAfterUtc: isoSeconds(cert.validTo),
    serialNumber: cert.serialNumber.toUpperCase(),
    // node:crypto does not expose the version field; every certificate DPS accepts is v3.
    version: 3,
  };
}

/** SHA-1 and SHA-256 thumbprints of a DER certificate: upper-case hex, no separators. */
export const derThumbprints = (der: Uint8Array): { sha1: string; sha256: string } => ({
  sha1: createHash("sha1").update(der).digest("hex").toUpperCase(),
  sha256: createHash("sha256").update(der).digest("hex").toUpperCase(),
});

/** The certificate as PEM, whatever form it was uploaded in. */
export const toPem = (cert: X509Certificate): string => cert.toString();
