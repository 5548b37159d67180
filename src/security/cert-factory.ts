// Test and development certificates: a root CA, intermediates, device leaves and proof-of-
// possession verification certificates, all ECDSA P-256. Used by `provisio cert generate` and
// by the tests (management.md §5.3, behaviors.md §2.2).
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { derThumbprints } from "../attestation/x509-info.js";

// Node's webcrypto is the WebCrypto API; its @types/node typing differs from the DOM's Crypto.
const crypto = webcrypto as unknown as Crypto;
x509.cryptoProvider.set(crypto);

const EC = { name: "ECDSA", namedCurve: "P-256" } as const;
const SIGNING = { name: "ECDSA", hash: "SHA-256" } as const;
const DAY = 24 * 3600_000;

export interface IssuedCertificate {
  certPem: string;
  keyPem: string;
  /** Upper-case hex SHA-1 and SHA-256 of the DER. */
  sha1: string;
  sha256: string;
  /** Kept for issuing further certificates; not serialisable. */
  readonly signer: { cert: x509.X509Certificate; key: CryptoKey };
}

export interface IssueOptions {
  /** Validity window; defaults: from one hour ago, for 365 days. */
  notBefore?: Date;
  notAfter?: Date;
}

const serial = (): string => {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  bytes[0] = (bytes[0] ?? 0) & 0x7f; // positive
  return Buffer.from(bytes).toString("hex");
};

async function finish(cert: x509.X509Certificate, keys: CryptoKeyPair): Promise<IssuedCertificate> {
  const der = Buffer.from(cert.rawData);
  return {
    // Newline-terminated, so chains can be made by concatenation.
    certPem: `${cert.toString("pem").trimEnd()}\n`,
    keyPem: `${x509.PemConverter.encode(await crypto.subtle.exportKey("pkcs8", keys.privateKey), "PRIVATE KEY").trimEnd()}\n`,
    ...derThumbprints(der),
    signer: { cert, key: keys.privateKey },
  };
}

const validity = (o: IssueOptions) => ({
  notBefore: o.notBefore ?? new Date(Date.now() - 3600_000),
  notAfter: o.notAfter ?? new Date(Date.now() + 365 * DAY),
});

/** A self-signed root CA. */
export async function createRootCa(commonName: string, options: IssueOptions = {}): Promise<IssuedCertificate> {
  const keys = await crypto.subtle.generateKey(EC, true, ["sign", "verify"]);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${commonName}`,
    ...validity(options),
    keys,
    signingAlgorithm: SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return finish(cert, keys);
}

async function issue(
  issuer: IssuedCertificate,
  commonName: string,
  ca: boolean,
  options: IssueOptions,
): Promise<IssuedCertificate> {
  const keys = await crypto.subtle.generateKey(EC, true, ["sign", "verify"]);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${commonName}`,
    issuer: issuer.signer.cert.subject,
    ...validity(options),
    publicKey: keys.publicKey,
    signingKey: issuer.signer.key,
    signingAlgorithm: SIGNING,
    extensions: ca
      ? [
          new x509.BasicConstraintsExtension(true, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
          await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        ]
      : [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
        ],
  });
  return finish(cert, keys);
}

/** An intermediate CA signed by `issuer`. */
export const createIntermediateCa = (issuer: IssuedCertificate, commonName: string, options: IssueOptions = {}) =>
  issue(issuer, commonName, true, options);

/** A device (client-auth) certificate whose CN is the registration id. */
export const createDeviceCertificate = (
  issuer: IssuedCertificate,
  registrationId: string,
  options: IssueOptions = {},
) => issue(issuer, registrationId, false, options);

/** Proof of possession: a certificate with CN = the verification code, signed by the CA's key. */
export const createVerificationCertificate = (ca: IssuedCertificate, verificationCode: string) =>
  issue(ca, verificationCode, false, {});

/** A self-signed device certificate (individual enrollments, self-signed hub identities). */
export async function createSelfSignedDevice(
  registrationId: string,
  options: IssueOptions = {},
): Promise<IssuedCertificate> {
  const keys = await crypto.subtle.generateKey(EC, true, ["sign", "verify"]);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${registrationId}`,
    ...validity(options),
    keys,
    signingAlgorithm: SIGNING,
    extensions: [new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true)],
  });
  return finish(cert, keys);
}

/** Load a CA (certificate + PKCS#8 key PEM) to issue from, e.g. one `provisio cert generate` wrote. */
export async function loadIssuer(certPem: string, keyPem: string): Promise<IssuedCertificate> {
  const cert = new x509.X509Certificate(certPem);
  const key = await crypto.subtle.importKey("pkcs8", x509.PemConverter.decodeFirst(keyPem), EC, true, ["sign"]);
  const der = Buffer.from(cert.rawData);
  return {
    certPem,
    keyPem,
    ...derThumbprints(der),
    signer: { cert, key },
  };
}
