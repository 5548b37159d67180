// TLS material for `provisio serve`: a per-data-dir development CA and an ECDSA P-256 server
// certificate signed by it. The CA is created once and never replaced, so clients that trust
// ca.pem keep working; only the server certificate is reissued when names change or it expires.
import { X509Certificate as NodeX509, randomBytes, webcrypto } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { isIPv4, isIPv6 } from "node:net";
import { join, resolve } from "node:path";

// @peculiar/x509 resolves its algorithms through tsyringe, which needs the Reflect metadata
// polyfill loaded first.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { createRootCa } from "./cert-factory.js";

// Node's webcrypto implements the WebCrypto API, but @types/node declares its own types,
// which TypeScript does not treat as the DOM `Crypto` the library expects.
const crypto = webcrypto as unknown as Crypto;
x509.cryptoProvider.set(crypto);

export interface TlsMaterial {
  caFile: string;
  caPem: string;
  /** The ECDSA P-256 server certificate: what clients that can do ECDSA get (it is faster). */
  certPem: string;
  keyPem: string;
  /**
   * An RSA 2048 server certificate for the same names, beside it: for TLS stacks that offer only
   * the suites DPS recommends (TLS_ECDHE_RSA_WITH_AES_*). The server picks per client. Absent
   * when an operator brings a single certificate (operator-tls.ts).
   */
  rsa?: { certPem: string; keyPem: string };
}

const EC: EcKeyGenParams = { name: "ECDSA", namedCurve: "P-256" };
const RSA: RsaHashedKeyGenParams = {
  name: "RSASSA-PKCS1-v1_5",
  modulusLength: 2048,
  publicExponent: new Uint8Array([1, 0, 1]),
  hash: "SHA-256",
};
const SIGNING: EcdsaParams = { name: "ECDSA", hash: "SHA-256" };
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
// Reissue a little before expiry so a long-running server does not start with a cert about to lapse.
const RENEW_BEFORE = 30 * DAY;

export async function ensureTlsMaterial(
  dir: string,
  names: { dnsNames: string[]; ipAddresses: string[] },
): Promise<TlsMaterial> {
  if (names.dnsNames.length === 0) throw new Error("The server certificate needs at least one DNS name.");
  const root = resolve(dir);
  mkdirSync(root, { recursive: true, mode: 0o700 });
  const file = (name: string) => join(root, name);

  const ca = await ensureCaFiles(root);
  const caPem = ca.certPem;
  const caKey = await importPrivateKey(ca.keyPem);

  const serve = async (kind: "ecdsa" | "rsa", base: string): Promise<{ certPem: string; keyPem: string }> => {
    const [certFile, keyFile] = [file(`${base}.pem`), file(`${base}.key`)];
    if (existsSync(certFile) && existsSync(keyFile)) {
      const certPem = readFileSync(certFile, "utf8");
      const keyPem = readFileSync(keyFile, "utf8");
      if (isReusable(certPem, caPem, names)) return { certPem, keyPem };
    }
    const issued = await issueServerCertificate(caPem, caKey, names, kind);
    writeAtomic(keyFile, issued.keyPem);
    writeAtomic(certFile, issued.certPem, 0o644);
    return issued;
  };
  const ecdsa = await serve("ecdsa", "server");
  const rsa = await serve("rsa", "server-rsa");
  return { caFile: file("ca.pem"), caPem, ...ecdsa, rsa };
}

/** The development CA of `dir`, created when absent. Never regenerated: clients may already trust it. */
export async function ensureCaFiles(dir: string): Promise<{ certPem: string; keyPem: string }> {
  const root = resolve(dir);
  mkdirSync(root, { recursive: true, mode: 0o700 });
  const [certFile, keyFile] = [join(root, "ca.pem"), join(root, "ca.key")];
  if (existsSync(certFile)) {
    if (!existsSync(keyFile)) throw new Error(`${certFile} exists but ${keyFile} is missing.`);
    return { certPem: readFileSync(certFile, "utf8"), keyPem: readFileSync(keyFile, "utf8") };
  }
  const ca = await createCa();
  writeAtomic(keyFile, ca.keyPem);
  writeAtomic(certFile, ca.certPem, 0o644);
  return { certPem: ca.certPem, keyPem: ca.keyPem };
}

/**
 * Makes `ca` the development CA of `dir`: the CA every node of a cluster shares. A server
 * certificate issued by another CA is then reissued by ensureTlsMaterial.
 */
export function installCa(dir: string, ca: { certPem: string; keyPem: string }): void {
  const root = resolve(dir);
  mkdirSync(root, { recursive: true, mode: 0o700 });
  const [certFile, keyFile] = [join(root, "ca.pem"), join(root, "ca.key")];
  if (existsSync(certFile) && readFileSync(certFile, "utf8") === ca.certPem) return;
  writeAtomic(keyFile, ca.keyPem);
  writeAtomic(certFile, ca.certPem, 0o644);
}

/**
 * Makes `certs` the server certificates of `dir` (a cluster's shared ones); ensureTlsMaterial
 * keeps each if it covers the names and comes from the CA, else reissues it.
 */
export function installServerCertificates(
  dir: string,
  certs: { certPem: string; keyPem: string; rsa?: { certPem: string; keyPem: string } },
): void {
  const root = resolve(dir);
  const install = (base: string, c: { certPem: string; keyPem: string }) => {
    const [certFile, keyFile] = [join(root, `${base}.pem`), join(root, `${base}.key`)];
    if (existsSync(certFile) && readFileSync(certFile, "utf8") === c.certPem) return;
    writeAtomic(keyFile, c.keyPem);
    writeAtomic(certFile, c.certPem, 0o644);
  };
  install("server", certs);
  if (certs.rsa) install("server-rsa", certs.rsa);
}

/** True when the certificate's SANs include every DNS name (case-insensitive) and IP address. */
export function certificateCovers(certPem: string, dnsNames: string[], ipAddresses: string[]): boolean {
  const dns = new Set<string>();
  const ips = new Set<string>();
  // Node prints e.g. `DNS:a, IP Address:127.0.0.1`; values with special characters are
  // JSON-quoted (commas escaped as \u002c), so splitting on ", " is safe.
  for (const entry of (new NodeX509(certPem).subjectAltName ?? "").split(", ")) {
    const colon = entry.indexOf(":");
    if (colon < 0) continue;
    const type = entry.slice(0, colon);
    let value = entry.slice(colon + 1);
    if (value.startsWith('"')) value = JSON.parse(value) as string;
    if (type === "DNS") dns.add(value.toLowerCase());
    else if (type === "IP Address") ips.add(normalizeIp(value));
  }
  return dnsNames.every((n) => dns.has(n.toLowerCase())) && ipAddresses.every((ip) => ips.has(normalizeIp(ip)));
}

function isReusable(certPem: string, caPem: string, names: { dnsNames: string[]; ipAddresses: string[] }): boolean {
  try {
    const leaf = new NodeX509(certPem);
    // A server cert from some other CA (ca.pem replaced by hand) would fail every client.
    if (!leaf.verify(new NodeX509(caPem).publicKey)) return false;
    if (Date.parse(leaf.validTo) - Date.now() < RENEW_BEFORE) return false;
    return certificateCovers(certPem, names.dnsNames, names.ipAddresses);
  } catch {
    return false; // Unreadable files are replaced rather than failing the start.
  }
}

/** The development CA: cert-factory's root CA, valid ten years, named uniquely per data dir. */
async function createCa(): Promise<{ certPem: string; keyPem: string; key: CryptoKey }> {
  // The random suffix keeps CAs of different data dirs apart in trust stores and in chain building.
  const ca = await createRootCa(`Provisio Development CA ${randomBytes(4).toString("hex")}`, {
    notBefore: new Date(Date.now() - HOUR), // tolerate clock skew between machines
    notAfter: new Date(Date.now() + 3650 * DAY),
  });
  return { certPem: ca.certPem, keyPem: ca.keyPem, key: ca.signer.key };
}

async function issueServerCertificate(
  caPem: string,
  caKey: CryptoKey,
  names: { dnsNames: string[]; ipAddresses: string[] },
  kind: "ecdsa" | "rsa",
): Promise<{ certPem: string; keyPem: string }> {
  const ca = new x509.X509Certificate(caPem);
  const caKeyId = ca.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  const keys = (await crypto.subtle.generateKey(kind === "rsa" ? RSA : EC, true, ["sign", "verify"])) as CryptoKeyPair;
  const now = Date.now();
  const dnsNames = [...new Set(names.dnsNames)];
  const ipAddresses = [...new Set(names.ipAddresses)];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: [{ CN: [dnsNames[0] as string] }], // JSON form, so names with commas need no escaping
    issuer: ca.subject,
    notBefore: new Date(now - HOUR),
    notAfter: new Date(now + 730 * DAY),
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        kind === "rsa"
          ? x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment
          : x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        ...dnsNames.map((value) => ({ type: "dns" as const, value })),
        ...ipAddresses.map((value) => ({ type: "ip" as const, value })),
      ]),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      // Copy the CA's own SKI so chain builders match the two exactly.
      caKeyId
        ? new x509.AuthorityKeyIdentifierExtension(caKeyId)
        : await x509.AuthorityKeyIdentifierExtension.create(ca.publicKey),
    ],
  });
  return { certPem: cert.toString("pem"), keyPem: await exportPrivateKey(keys.privateKey) };
}

/** 16 random bytes with the top bit clear: a positive INTEGER without a padding byte. */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] as number) & 0x7f) | 0x01;
  return bytes.toString("hex");
}

async function exportPrivateKey(key: CryptoKey): Promise<string> {
  // PKCS#8 ("BEGIN PRIVATE KEY") is what tls.createServer and OpenSSL read without hints.
  return x509.PemConverter.encode(await crypto.subtle.exportKey("pkcs8", key), "PRIVATE KEY");
}

async function importPrivateKey(pem: string): Promise<CryptoKey> {
  return crypto.subtle.importKey("pkcs8", x509.PemConverter.decodeFirst(pem), EC, false, ["sign"]);
}

/** Write via a temp file and rename, so a crash never leaves a truncated key or certificate. */
function writeAtomic(path: string, text: string, mode = 0o600): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode });
  chmodSync(tmp, mode); // the umask may have narrowed or the file pre-existed
  renameSync(tmp, path);
}

/** Node prints IPv6 SANs uncompressed (`0:0:0:0:0:0:0:1`); compare in that form. */
function normalizeIp(ip: string): string {
  if (isIPv4(ip) || !isIPv6(ip)) return ip.toLowerCase();
  let text = ip.toLowerCase();
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)?.[1];
  if (v4) {
    const [a, b, c, d] = v4.split(".").map(Number) as [number, number, number, number];
    text = `${text.slice(0, -v4.length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill("0"), ...right];
  return groups.map((g) => Number.parseInt(g, 16).toString(16)).join(":");
}
