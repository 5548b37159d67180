// `provisio certificate …`: a provisioning service's CA certificates and their proof of
// possession, mirroring `az iot dps certificate …` (management.md §7.4). Every command prints
// the server's JSON on stdout; a refusal is reported with the server's message and exit code 1.
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { clientOf, DpsSession, managementOptions, type Opts, print, required, str } from "./server-options.js";

export function parseBoolean(text: string): boolean {
  const t = text.trim().toLowerCase();
  if (t === "true" || t === "yes" || t === "1") return true;
  if (t === "false" || t === "no" || t === "0") return false;
  throw new Error(`'${text}' is not true or false.`);
}

/**
 * The certificate text to upload from a `.pem` or `.cer` file: PEM (or base64) text as is,
 * trimmed; binary DER base64-encoded (management.md §5.1).
 */
export function readCertificateFile(path: string): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new Error(`Cannot read ${path}: ${(err as Error).message}`);
  }
  const text = bytes.toString("utf8").trim();
  if (text.includes("-----BEGIN")) return text;
  if (/^[A-Za-z0-9+/=\r\n]+$/.test(text) && text.length > 0) return text.replace(/\s+/g, "");
  return bytes.toString("base64");
}

const seg = encodeURIComponent;
/** `--dps-name`'s certificates, or those of the instance the credentials belong to. */
const certificatesPath = async (o: Opts): Promise<string> => `${await new DpsSession(o).instancePath()}/certificates`;

function certName(o: Opts): string {
  const name = str(o, "certificateName") ?? str(o, "name");
  if (!name) throw new Error("The certificate name is required: --certificate-name, --name or -n.");
  return name;
}

/** Flags every certificate command shares: which server, which credentials, which instance. */
const common = (cmd: Command): Command => managementOptions(cmd);

/** The certificate name flags of `az iot dps certificate`: --certificate-name, --name, -n. */
const named = (cmd: Command): Command =>
  cmd.option("-n, --name <name>", "certificate name").option("--certificate-name <name>", "certificate name");

const etagged = (cmd: Command): Command => cmd.option("-e, --etag <etag>", "the certificate's current etag");

const verifiedFlag = (cmd: Command): Command =>
  cmd.option("-v, --verified [bool]", "mark as verified on upload (skips proof of possession)", parseBoolean);

export function registerCertificateCommands(program: Command): void {
  const group = program
    .command("certificate")
    .description("Manage a provisioning service's CA certificates (like az iot dps certificate)");

  verifiedFlag(named(common(group.command("create").description("Upload a CA certificate; fails if the name exists"))))
    .option("-p, --path <file>", "the certificate, .pem or .cer (public part only)")
    .action(async (o: Opts) => {
      const client = clientOf(o);
      const name = certName(o);
      const certificate = readCertificateFile(required(o, "path", "--path"));
      const path = `${await certificatesPath(o)}/${seg(name)}`;
      const existing = await client.send("GET", path);
      if (existing.status === 200) {
        throw new Error(`Certificate '${name}' already exists; use 'provisio certificate update' with its --etag.`);
      }
      print(await client.call("PUT", path, { body: { certificate, isVerified: o.verified === true } }), o);
    });

  common(group.command("list").description("List the CA certificates")).action(async (o: Opts) => {
    print(await clientOf(o).call("GET", await certificatesPath(o)), o);
  });

  named(common(group.command("show").description("Show one CA certificate"))).action(async (o: Opts) => {
    print(await clientOf(o).call("GET", `${await certificatesPath(o)}/${seg(certName(o))}`), o);
  });

  verifiedFlag(
    etagged(named(common(group.command("update").description("Replace a CA certificate; fails if it is absent")))),
  )
    .option("-p, --path <file>", "the new certificate, .pem or .cer (public part only)")
    .action(async (o: Opts) => {
      const client = clientOf(o);
      const path = `${await certificatesPath(o)}/${seg(certName(o))}`;
      const etag = required(o, "etag", "--etag");
      const certificate = readCertificateFile(required(o, "path", "--path"));
      await client.call("GET", path); // absent: the server's not-found message
      const body = { certificate, ...(typeof o.verified === "boolean" ? { isVerified: o.verified } : {}) };
      print(await client.call("PUT", path, { body, headers: { "if-match": etag } }), o);
    });

  etagged(named(common(group.command("delete").description("Delete a CA certificate")))).action(async (o: Opts) => {
    const etag = required(o, "etag", "--etag");
    await clientOf(o).call("DELETE", `${await certificatesPath(o)}/${seg(certName(o))}`, {
      headers: { "if-match": etag },
    });
  });

  etagged(
    named(
      common(
        group
          .command("generate-verification-code")
          .description("Get a verification code to sign with the CA key (proof of possession)"),
      ),
    ),
  ).action(async (o: Opts) => {
    const etag = required(o, "etag", "--etag");
    const path = `${await certificatesPath(o)}/${seg(certName(o))}/generateVerificationCode`;
    print(await clientOf(o).call("POST", path, { headers: { "if-match": etag } }), o);
  });

  etagged(
    named(
      common(
        group.command("verify").description("Prove possession of the CA key with a certificate whose CN is the code"),
      ),
    ),
  )
    .option("-p, --path <file>", "the verification certificate, .pem or .cer")
    .action(async (o: Opts) => {
      const etag = required(o, "etag", "--etag");
      const certificate = readCertificateFile(required(o, "path", "--path"));
      const path = `${await certificatesPath(o)}/${seg(certName(o))}/verifyCertificate`;
      print(await clientOf(o).call("POST", path, { body: { certificate }, headers: { "if-match": etag } }), o);
    });
}
