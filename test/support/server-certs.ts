// Server certificates an operator might bring (issue 20 "TLS"): a root, an intermediate, and
// leaves of either key type for given names, written as the PEM files `--tls-cert` reads.
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";
import { createIntermediateCa, createRootCa, type IssuedCertificate } from "../../src/security/cert-factory.js";

const crypto = webcrypto as unknown as Crypto;

export interface OperatorPki {
  root: IssuedCertificate;
  intermediate: IssuedCertificate;
}

export async function operatorPki(name = "Operator"): Promise<OperatorPki> {
  const root = await createRootCa(`${name} Root CA`);
  return { root, intermediate: await createIntermediateCa(root, `${name} Issuing CA`) };
}

const ALGORITHMS = {
  ec: { name: "ECDSA", namedCurve: "P-256" } as EcKeyGenParams,
  rsa: {
    name: "RSASSA-PKCS1-v1_5",
    modulusLength: 2048,
    publicExponent: new Uint8Array([1, 0, 1]),
    hash: "SHA-256",
  } as RsaHashedKeyGenParams,
};

/** A server leaf from the intermediate; `chainPem` is leaf + intermediate, as servers send it. */
export async function serverLeaf(
  pki: OperatorPki,
  keyType: "ec" | "rsa",
  names: { dns?: string[]; ip?: string[] } = { dns: ["localhost"], ip: ["127.0.0.1"] },
  validity: { notBefore?: Date; notAfter?: Date } = {},
): Promise<{ chainPem: string; keyPem: string; serial: string }> {
  const keys = (await crypto.subtle.generateKey(ALGORITHMS[keyType], true, ["sign", "verify"])) as CryptoKeyPair;
  const serial = Buffer.from(crypto.getRandomValues(new Uint8Array(8)))
    .toString("hex")
    .replace(/^./, "1");
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: `CN=${names.dns?.[0] ?? names.ip?.[0] ?? "server"}`,
    issuer: pki.intermediate.signer.cert.subject,
    notBefore: validity.notBefore ?? new Date(Date.now() - 3600_000),
    notAfter: validity.notAfter ?? new Date(Date.now() + 90 * 24 * 3600_000),
    publicKey: keys.publicKey,
    signingKey: pki.intermediate.signer.key,
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        ...(names.dns ?? []).map((value) => ({ type: "dns" as const, value })),
        ...(names.ip ?? []).map((value) => ({ type: "ip" as const, value })),
      ]),
    ],
  });
  const keyPem = x509.PemConverter.encode(await crypto.subtle.exportKey("pkcs8", keys.privateKey), "PRIVATE KEY");
  return { chainPem: `${cert.toString("pem").trimEnd()}\n${pki.intermediate.certPem}`, keyPem, serial };
}

/** Writes a leaf's chain and key as `<base>.pem` and `<base>.key` in `dir`; returns both paths. */
export function writePair(dir: string, base: string, leaf: { chainPem: string; keyPem: string }): [string, string] {
  const [cert, key] = [join(dir, `${base}.pem`), join(dir, `${base}.key`)];
  writeFileSync(cert, leaf.chainPem);
  writeFileSync(key, leaf.keyPem, { mode: 0o600 });
  return [cert, key];
}
