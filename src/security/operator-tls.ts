// Server certificates an operator brings (`--tls-cert`, `--tls-key`; issue 20 "TLS"): each pair is
// a PEM chain (leaf first, then intermediates) and the leaf's key. At most one RSA and one ECDSA
// pair: OpenSSL serves one certificate per key type and picks per client. Read at start and
// again on SIGHUP; a reload that does not check out keeps the certificates already served.
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import type { TlsMaterial } from "./tls-material.js";

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const DAY = 24 * 3600_000;

export interface OperatorCertificateFiles {
  certFiles: string[];
  keyFiles: string[];
  /** The CA devices trust for these certificates; default: the top of the first chain (the caller stores it). */
  caFile: string | undefined;
}

/** What `provisio serve` serves, and what an operator is told about it. */
export interface LoadedOperatorTls {
  material: TlsMaterial;
  /** One line per certificate for the log: key type, subject, expiry, files. */
  served: { keyType: "rsa" | "ec"; subject: string; validTo: string; certFile: string }[];
  /** Warnings worth a log line: a certificate close to expiry. */
  warnings: string[];
}

/** Each PEM certificate of a file, in order. */
export function pemCertificates(text: string): string[] {
  return [...text.matchAll(PEM_CERT)].map((m) => `${m[0]}\n`);
}

function read(file: string, what: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (e) {
    throw new Error(`${what} '${file}' cannot be read: ${(e as Error).message}`);
  }
}

/** Reads and checks the files; an Error says which file is wrong and why. */
export function loadOperatorTls(files: OperatorCertificateFiles, now = Date.now()): LoadedOperatorTls {
  const { certFiles, keyFiles } = files;
  if (certFiles.length !== keyFiles.length) {
    throw new Error(
      `--tls-cert and --tls-key must come in pairs: ${certFiles.length} certificate file(s), ${keyFiles.length} key file(s).`,
    );
  }
  const pairs: { keyType: "rsa" | "ec"; certPem: string; keyPem: string; leaf: X509Certificate; chain: string[] }[] =
    [];
  certFiles.forEach((certFile, i) => {
    const keyFile = keyFiles[i] as string;
    const chain = pemCertificates(read(certFile, "--tls-cert"));
    if (chain.length === 0) throw new Error(`--tls-cert '${certFile}' holds no PEM certificate.`);
    const keyPem = read(keyFile, "--tls-key");
    let leaf: X509Certificate;
    let key: ReturnType<typeof createPrivateKey>;
    try {
      leaf = new X509Certificate(chain[0] as string);
    } catch (e) {
      throw new Error(`--tls-cert '${certFile}': the first certificate cannot be read: ${(e as Error).message}`);
    }
    try {
      key = createPrivateKey(keyPem);
    } catch (e) {
      throw new Error(`--tls-key '${keyFile}' is not a readable unencrypted private key: ${(e as Error).message}`);
    }
    const keyType = key.asymmetricKeyType;
    if (keyType !== "rsa" && keyType !== "ec") {
      throw new Error(`--tls-key '${keyFile}' is a ${keyType} key; server certificates must be RSA or ECDSA.`);
    }
    if (!leaf.checkPrivateKey(key)) {
      throw new Error(`--tls-key '${keyFile}' is not the key of the first certificate in '${certFile}'.`);
    }
    if (Date.parse(leaf.validTo) <= now) {
      throw new Error(`--tls-cert '${certFile}' expired on ${new Date(leaf.validTo).toISOString()}.`);
    }
    // Intermediates in order: each signed by the next, so clients can build the path.
    for (let j = 0; j + 1 < chain.length; j++) {
      const [child, parent] = [new X509Certificate(chain[j] as string), new X509Certificate(chain[j + 1] as string)];
      if (!child.checkIssued(parent) || !child.verify(parent.publicKey)) {
        throw new Error(
          `--tls-cert '${certFile}': certificate ${j + 2} did not issue certificate ${j + 1}; put the leaf first, then each issuer.`,
        );
      }
    }
    if (pairs.some((p) => p.keyType === keyType)) {
      throw new Error(
        `two ${keyType === "rsa" ? "RSA" : "ECDSA"} certificates given; a listener serves one of each key type (--tls-cert '${certFile}').`,
      );
    }
    pairs.push({ keyType, certPem: chain.join(""), keyPem, leaf, chain });
  });
  const first = pairs[0];
  if (!first) throw new Error("no --tls-cert given.");
  const caFile = files.caFile ?? certFiles[0];
  const caPem = files.caFile ? read(files.caFile, "--tls-ca") : (first.chain.at(-1) as string);
  if (pemCertificates(caPem).length === 0) throw new Error(`--tls-ca '${caFile}' holds no PEM certificate.`);
  // ECDSA first, as with the development certificates; the RSA pair beside it.
  const ec = pairs.find((p) => p.keyType === "ec");
  const rsa = pairs.find((p) => p.keyType === "rsa");
  const main = ec ?? (rsa as (typeof pairs)[number]);
  const material: TlsMaterial = {
    caFile: caFile as string,
    caPem,
    certPem: main.certPem,
    keyPem: main.keyPem,
    ...(ec && rsa ? { rsa: { certPem: rsa.certPem, keyPem: rsa.keyPem } } : {}),
  };
  return {
    material,
    served: pairs.map((p, i) => ({
      keyType: p.keyType,
      subject: p.leaf.subject.replace(/\n/g, ", "),
      validTo: new Date(p.leaf.validTo).toISOString(),
      certFile: certFiles[i] as string,
    })),
    warnings: pairs
      .filter((p) => Date.parse(p.leaf.validTo) - now < 30 * DAY)
      .map((p) => `the server certificate '${p.leaf.subject}' expires on ${new Date(p.leaf.validTo).toISOString()}`),
  };
}

/** The names (DNS, IP) a loaded certificate does not cover (wildcards count): devices using them fail. */
export function uncoveredNames(material: TlsMaterial, names: { dnsNames: string[]; ipAddresses: string[] }): string[] {
  const leaves = [material.certPem, ...(material.rsa ? [material.rsa.certPem] : [])].map(
    (chain) => new X509Certificate(pemCertificates(chain)[0] as string),
  );
  return [
    ...names.dnsNames.filter((n) => leaves.some((l) => l.checkHost(n) === undefined)),
    ...names.ipAddresses.filter((ip) => leaves.some((l) => l.checkIP(ip) === undefined)),
  ];
}

/** The DNS names and IP addresses the served leaf certificates name (for messages). */
export function certificateSubjectNames(material: TlsMaterial): string[] {
  const chains = [material.certPem, ...(material.rsa ? [material.rsa.certPem] : [])];
  const names = chains.flatMap((chain) =>
    (new X509Certificate(pemCertificates(chain)[0] as string).subjectAltName ?? "")
      .split(", ")
      .map((n) => n.replace(/^(DNS|IP Address):/, ""))
      .filter(Boolean),
  );
  return [...new Set(names)];
}
