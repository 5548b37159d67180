// Device certificates for tests, made in-process (no openssl needed): ECDSA P-256.
import "reflect-metadata";
import { createHash, webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";

// Node's webcrypto is the WebCrypto API; its @types/node typing differs from the DOM's Crypto.
const crypto = webcrypto as unknown as Crypto;
x509.cryptoProvider.set(crypto);
const EC = { name: "ECDSA", namedCurve: "P-256" } as const;
const SIGNING = { name: "ECDSA", hash: "SHA-256" } as const;

export interface TestCertificate {
  certPem: string;
  keyPem: string;
  /** Upper-case hex SHA-1 of the DER. */
  sha1: string;
}

export async function selfSignedDeviceCert(commonName: string): Promise<TestCertificate> {
  const keys = await crypto.subtle.generateKey(EC, true, ["sign", "verify"]);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: Buffer.from(crypto.getRandomValues(new Uint8Array(8)))
      .toString("hex")
      .replace(/^[89a-f]/, "1"),
    name: `CN=${commonName}`,
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 30 * 24 * 3600_000),
    keys,
    signingAlgorithm: SIGNING,
    extensions: [new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true)],
  });
  const keyPem = x509.PemConverter.encode(await crypto.subtle.exportKey("pkcs8", keys.privateKey), "PRIVATE KEY");
  const sha1 = createHash("sha1").update(Buffer.from(cert.rawData)).digest("hex").toUpperCase();
  return { certPem: cert.toString("pem"), keyPem, sha1 };
}
