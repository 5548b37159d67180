// `provisio cert generate` and `provisio cert generate-verification`: test and development
// certificates (ECDSA P-256) for X.509 enrollment groups and CA proof of possession, made with
// src/security/cert-factory.ts. Private keys are written readable by the owner only (0600).
import { createPrivateKey } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { Command } from "commander";
import { isValidRegistrationId } from "../domain/ids.js";
import {
  createDeviceCertificate,
  createIntermediateCa,
  createRootCa,
  createVerificationCertificate,
  type IssueOptions,
  loadIssuer,
} from "../security/cert-factory.js";

const DAY = 24 * 3600_000;

export interface GenerateOptions {
  out: string;
  rootName?: string;
  intermediateName?: string;
  devices: string[];
  /** Validity of every certificate, from an hour ago; default 365. */
  days?: number;
}

export interface GeneratedFile {
  certificate: string;
  key: string;
  subject: string;
  thumbprint: string;
}

export interface GenerateResult {
  root: GeneratedFile;
  intermediate: GeneratedFile;
  devices: (GeneratedFile & { registrationId: string })[];
}

function writePublic(file: string, text: string): void {
  writeFileSync(file, text);
}

/** Keys: 0600 even when the file already existed with wider permissions. */
function writeKey(file: string, text: string): void {
  writeFileSync(file, text, { mode: 0o600 });
  chmodSync(file, 0o600);
}

function validity(days: number | undefined): IssueOptions {
  if (days === undefined) return {};
  if (!Number.isInteger(days) || days < 1) throw new Error("--days must be a whole number of at least 1.");
  return { notBefore: new Date(Date.now() - 3600_000), notAfter: new Date(Date.now() + days * DAY) };
}

/** Root CA, intermediate CA and one leaf per device (leaf PEM followed by the intermediate). */
export async function generateChain(o: GenerateOptions): Promise<GenerateResult> {
  for (const id of o.devices) {
    if (!isValidRegistrationId(id)) {
      throw new Error(
        `'${id}' is not a valid registration id: 1-128 characters from A-Z a-z 0-9 - . _ : ending with a letter, digit or '-'.`,
      );
    }
  }
  const options = validity(o.days);
  const out = resolve(o.out);
  mkdirSync(out, { recursive: true });
  const rootName = o.rootName ?? "Provisio Test Root CA";
  const intermediateName = o.intermediateName ?? "Provisio Test Intermediate CA";

  const root = await createRootCa(rootName, options);
  const intermediate = await createIntermediateCa(root, intermediateName, options);
  const file = (name: string) => join(out, name);
  writePublic(file("root.pem"), root.certPem);
  writeKey(file("root.key"), root.keyPem);
  writePublic(file("intermediate.pem"), intermediate.certPem);
  writeKey(file("intermediate.key"), intermediate.keyPem);

  const devices: GenerateResult["devices"] = [];
  for (const registrationId of o.devices) {
    const leaf = await createDeviceCertificate(intermediate, registrationId, options);
    const chain = `${leaf.certPem.trim()}\n${intermediate.certPem.trim()}\n`;
    writePublic(file(`${registrationId}.pem`), chain);
    writeKey(file(`${registrationId}.key`), leaf.keyPem);
    devices.push({
      registrationId,
      certificate: file(`${registrationId}.pem`),
      key: file(`${registrationId}.key`),
      subject: `CN=${registrationId}`,
      thumbprint: leaf.sha1,
    });
  }
  return {
    root: { certificate: file("root.pem"), key: file("root.key"), subject: `CN=${rootName}`, thumbprint: root.sha1 },
    intermediate: {
      certificate: file("intermediate.pem"),
      key: file("intermediate.key"),
      subject: `CN=${intermediateName}`,
      thumbprint: intermediate.sha1,
    },
    devices,
  };
}

export interface VerificationOptions {
  caCert: string;
  caKey: string;
  code: string;
  out: string;
}

/** A certificate whose CN is the verification code, signed by the CA's key (management.md §5.3). */
export async function generateVerification(
  o: VerificationOptions,
): Promise<{ certificate: string; subject: string; thumbprint: string }> {
  const code = o.code.trim();
  if (!/^[A-Za-z0-9]{1,64}$/.test(code)) throw new Error("--code must be the verification code the service returned.");
  const read = (f: string) => {
    try {
      return readFileSync(f, "utf8");
    } catch (err) {
      throw new Error(`Cannot read ${f}: ${(err as Error).message}`);
    }
  };
  const certPem = read(o.caCert);
  let keyPem: string;
  try {
    // Accept SEC1 ("EC PRIVATE KEY", as openssl writes) as well as PKCS#8.
    keyPem = createPrivateKey(read(o.caKey)).export({ type: "pkcs8", format: "pem" }).toString();
  } catch (err) {
    throw new Error(`${o.caKey} is not a private key: ${(err as Error).message}`);
  }
  let issuer: Awaited<ReturnType<typeof loadIssuer>>;
  try {
    issuer = await loadIssuer(certPem, keyPem);
  } catch (err) {
    throw new Error(
      `Cannot sign with ${o.caCert} and ${o.caKey} (an ECDSA P-256 certificate and key are needed): ${(err as Error).message}`,
    );
  }
  const proof = await createVerificationCertificate(issuer, code);
  const out = resolve(o.out);
  mkdirSync(dirname(out), { recursive: true });
  writePublic(out, proof.certPem);
  return { certificate: out, subject: `CN=${code}`, thumbprint: proof.sha1 };
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

export function registerCertCommands(program: Command): void {
  const cert = program.command("cert").description("Make test certificates (ECDSA P-256)");
  cert
    .command("generate")
    .description("Write a root CA, an intermediate CA and device certificates into a directory")
    .requiredOption("--out <dir>", "output directory")
    .option("--root-name <cn>", "root CA common name", "Provisio Test Root CA")
    .option("--intermediate-name <cn>", "intermediate CA common name", "Provisio Test Intermediate CA")
    .option("--device <registrationId>", "a device certificate (CN = registration id); repeatable", collect, [])
    .option("--days <n>", "validity in days", "365")
    .action(async (o: { out: string; rootName: string; intermediateName: string; device: string[]; days: string }) => {
      const result = await generateChain({
        out: o.out,
        rootName: o.rootName,
        intermediateName: o.intermediateName,
        devices: o.device,
        days: Number(o.days),
      });
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    });
  cert
    .command("generate-verification")
    .description("Sign a proof-of-possession certificate whose CN is the verification code")
    .requiredOption("--ca-cert <file>", "the CA certificate uploaded to the service (PEM)")
    .requiredOption("--ca-key <file>", "its private key (PEM)")
    .requiredOption("--code <code>", "the verification code from generate-verification-code")
    .requiredOption("--out <file>", "where to write the verification certificate (PEM)")
    .action(async (o: VerificationOptions) => {
      process.stdout.write(`${JSON.stringify(await generateVerification(o), null, 2)}\n`);
    });
}
