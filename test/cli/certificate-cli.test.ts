// `provisio certificate …` and `provisio cert …` end to end (management.md §7.4): the proof of
// possession flow an operator runs, through the real CLI against a real server.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { runProvisio } from "../support/run-cli.js";

interface CertResource {
  name: string;
  etag: string;
  properties: {
    subject: string;
    thumbprint: string;
    isVerified: boolean;
    verificationCode?: string;
    certificate?: string;
  };
}
interface Generated {
  root: { certificate: string; key: string; subject: string; thumbprint: string };
  intermediate: { certificate: string; key: string; subject: string; thumbprint: string };
  devices: { registrationId: string; certificate: string; key: string; thumbprint: string }[];
}

const provisio = runProvisio;

/** Run, expect exit 0, parse stdout. */
async function ok<T>(args: string[], env?: Record<string, string>): Promise<T> {
  const r = await provisio(args, env);
  assert.equal(r.code, 0, `provisio ${args.join(" ")}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** Run, expect exit 1 with a message on stderr and nothing on stdout. */
async function refused(args: string[], message: RegExp): Promise<void> {
  const r = await provisio(args);
  const context = `provisio ${args.join(" ")}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
  assert.equal(r.code, 1, `expected failure: ${context}`);
  assert.equal(r.stdout, "", context);
  assert.match(r.stderr, message, context);
}

describe("provisio certificate / cert CLI", () => {
  let p: ProvisioProcess;
  let dir: string;
  let gen: Generated;
  let data: string[];
  before(async () => {
    p = await startProvisio();
    dir = mkdtempSync(join(tmpdir(), "provisio-cli-certs-"));
    data = ["--data-dir", p.dataDir];
  });
  after(async () => {
    await p.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  test("cert generate writes a root, an intermediate and device chains; keys are 0600", async () => {
    gen = await ok<Generated>([
      "cert",
      "generate",
      "--out",
      join(dir, "chain"),
      "--root-name",
      "CLI Root",
      "--intermediate-name",
      "CLI Intermediate",
      "--device",
      "dev-1",
      "--device",
      "dev-2",
      "--days",
      "30",
    ]);
    assert.equal(gen.root.subject, "CN=CLI Root");
    assert.equal(gen.devices.length, 2);
    for (const f of [gen.root.key, gen.intermediate.key, ...gen.devices.map((d) => d.key)]) {
      assert.equal(statSync(f).mode & 0o777, 0o600, f);
      assert.match(readFileSync(f, "utf8"), /BEGIN PRIVATE KEY/);
    }
    const root = new X509Certificate(readFileSync(gen.root.certificate));
    const intermediate = new X509Certificate(readFileSync(gen.intermediate.certificate));
    assert.equal(root.fingerprint.replaceAll(":", ""), gen.root.thumbprint);
    assert.ok(intermediate.verify(root.publicKey));
    assert.ok(Date.parse(intermediate.validTo) - Date.now() < 31 * 24 * 3600_000);

    const chain = readFileSync(join(dir, "chain", "dev-1.pem"), "utf8");
    const pems = chain.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
    assert.equal(pems.length, 2, "leaf then intermediate");
    const leaf = new X509Certificate(pems[0] ?? "");
    assert.equal(leaf.subject, "CN=dev-1");
    assert.ok(leaf.verify(intermediate.publicKey));
    assert.equal(new X509Certificate(pems[1] ?? "").fingerprint, intermediate.fingerprint);

    await refused(["cert", "generate", "--out", join(dir, "bad"), "--device", "no/slash"], /registration id/);
  });

  test("proof of possession through the CLI: create, generate-verification-code, cert generate-verification, verify", async () => {
    const created = await ok<CertResource>([
      "certificate",
      "create",
      "--certificate-name",
      "cli-root",
      "--path",
      gen.root.certificate,
      ...data,
    ]);
    assert.equal(created.name, "cli-root");
    assert.equal(created.properties.subject, "CN=CLI Root");
    assert.equal(created.properties.thumbprint, gen.root.thumbprint);
    assert.equal(created.properties.isVerified, false);
    assert.equal(created.properties.certificate, undefined);

    await refused(["certificate", "create", "-n", "cli-root", "-p", gen.root.certificate, ...data], /already exists/);

    const list = await ok<{ value: CertResource[] }>(["certificate", "list", ...data]);
    assert.deepEqual(
      list.value.map((c) => c.name),
      ["cli-root"],
    );
    const shown = await ok<CertResource>(["certificate", "show", "--name", "cli-root", ...data]);
    assert.equal(shown.etag, created.etag);

    // Without --etag the command refuses; with a stale one the server does (its message on stderr).
    await refused(["certificate", "generate-verification-code", "-n", "cli-root", ...data], /--etag is required/);
    await refused(
      ["certificate", "generate-verification-code", "-n", "cli-root", "--etag", "c3RhbGU=", ...data],
      /If-Match etag does not match/,
    );
    const code = await ok<CertResource>([
      "certificate",
      "generate-verification-code",
      "--name",
      "cli-root",
      "--etag",
      created.etag,
      ...data,
    ]);
    const verificationCode = code.properties.verificationCode ?? "";
    assert.match(verificationCode, /^[0-9A-F]{40}$/);
    assert.notEqual(code.etag, created.etag);

    // Signed by the wrong key: the server explains why.
    const wrong = join(dir, "wrong.pem");
    const wrongMade = await ok<{ certificate: string; subject: string }>([
      "cert",
      "generate-verification",
      "--ca-cert",
      gen.intermediate.certificate,
      "--ca-key",
      gen.intermediate.key,
      "--code",
      verificationCode,
      "--out",
      wrong,
    ]);
    assert.equal(wrongMade.subject, `CN=${verificationCode}`);
    await refused(
      ["certificate", "verify", "-n", "cli-root", "-p", wrong, "-e", code.etag, ...data],
      /not signed by the private key/,
    );

    const proof = join(dir, "verification.pem");
    await ok([
      "cert",
      "generate-verification",
      "--ca-cert",
      gen.root.certificate,
      "--ca-key",
      gen.root.key,
      "--code",
      verificationCode,
      "--out",
      proof,
    ]);
    assert.equal(new X509Certificate(readFileSync(proof)).subject, `CN=${verificationCode}`);
    const verified = await ok<CertResource>([
      "certificate",
      "verify",
      "--name",
      "cli-root",
      "--path",
      proof,
      "--etag",
      code.etag,
      ...data,
    ]);
    assert.equal(verified.properties.isVerified, true);
    assert.equal(verified.properties.verificationCode, undefined);

    // update needs the etag; new content with --verified stays verified, without it resets.
    await refused(
      ["certificate", "update", "-n", "cli-root", "-p", gen.intermediate.certificate, "-e", code.etag, ...data],
      /If-Match etag does not match/,
    );
    const updated = await ok<CertResource>([
      "certificate",
      "update",
      "-n",
      "cli-root",
      "-p",
      gen.intermediate.certificate,
      "-e",
      verified.etag,
      ...data,
    ]);
    assert.equal(updated.properties.thumbprint, gen.intermediate.thumbprint);
    assert.equal(updated.properties.isVerified, false);
    const reverified = await ok<CertResource>([
      "certificate",
      "update",
      "-n",
      "cli-root",
      "-p",
      gen.root.certificate,
      "-e",
      updated.etag,
      "--verified",
      ...data,
    ]);
    assert.equal(reverified.properties.isVerified, true);
    await refused(
      ["certificate", "update", "-n", "absent", "-p", gen.root.certificate, "-e", "*", ...data],
      /does not exist/,
    );

    // delete: etag required; then the certificate is gone.
    await refused(["certificate", "delete", "-n", "cli-root", ...data], /--etag is required/);
    const deleted = await provisio(["certificate", "delete", "-n", "cli-root", "-e", reverified.etag, ...data]);
    assert.equal(deleted.code, 0, deleted.stderr);
    await refused(["certificate", "show", "-n", "cli-root", ...data], /does not exist/);
  });

  test("uploads refused by the server fail with its message", async () => {
    await refused(["certificate", "create", "-n", "with-key", "-p", gen.root.key, ...data], /private key/);
    const junk = join(dir, "junk.pem");
    writeFileSync(junk, "hello\n");
    await refused(["certificate", "create", "-n", "junk", "-p", junk, ...data], /Invalid certificate/);
    await refused(["certificate", "create", "-n", "nofile", "-p", join(dir, "missing.pem"), ...data], /Cannot read/);
  });

  test("--connection-string, --ca-file and --port; a binary .cer; PROVISIO_DATA_DIR", async () => {
    const cer = join(dir, "intermediate.cer");
    writeFileSync(cer, new X509Certificate(readFileSync(gen.intermediate.certificate)).raw);
    const remote = [
      "--connection-string",
      p.info.serviceConnectionString,
      "--ca-file",
      p.info.caFile,
      "--port",
      String(p.info.ports.https),
    ];
    const created = await ok<CertResource>(["certificate", "create", "-n", "via-cs", "-p", cer, "-v", ...remote]);
    assert.equal(created.properties.thumbprint, gen.intermediate.thumbprint);
    assert.equal(created.properties.isVerified, true);
    const shown = await ok<CertResource>(["certificate", "show", "-n", "via-cs", ...remote]);
    assert.equal(shown.etag, created.etag);

    const listed = await ok<{ value: CertResource[] }>(["certificate", "list"], { PROVISIO_DATA_DIR: p.dataDir });
    assert.ok(listed.value.some((c) => c.name === "via-cs"));

    // Without --ca-file the system's trust decides, which does not know the development CA.
    await refused(
      [
        "certificate",
        "list",
        "--connection-string",
        p.info.serviceConnectionString,
        "--port",
        String(p.info.ports.https),
      ],
      /Pass --ca-file/,
    );
  });
});
