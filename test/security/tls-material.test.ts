import assert from "node:assert/strict";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import tls from "node:tls";
import { certificateCovers, ensureTlsMaterial, type TlsMaterial } from "../../src/security/tls-material.js";

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "provisio-tls-"));
  dirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const NAMES = { dnsNames: ["localhost", "hub1.localhost"], ipAddresses: ["127.0.0.1"] };

test("creates CA and server files; the CA signs an EC P-256 server cert", async () => {
  const dir = join(tempDir(), "tls");
  const m = await ensureTlsMaterial(dir, NAMES);
  assert.equal(m.caFile, join(dir, "ca.pem"));
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  for (const f of ["ca.key", "server.key"]) assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f);
  assert.equal(readFileSync(join(dir, "ca.pem"), "utf8"), m.caPem);
  assert.equal(readFileSync(join(dir, "server.pem"), "utf8"), m.certPem);
  assert.equal(readFileSync(join(dir, "server.key"), "utf8"), m.keyPem);
  assert.match(m.keyPem, /^-----BEGIN PRIVATE KEY-----/);

  const ca = new X509Certificate(m.caPem);
  const leaf = new X509Certificate(m.certPem);
  assert.ok(leaf.verify(ca.publicKey));
  assert.ok(ca.ca);
  assert.ok(!leaf.ca);
  assert.match(ca.subject, /CN=Provisio Development CA \S+/);
  assert.match(leaf.subject, /CN=localhost/);
  assert.ok(leaf.checkIssued(ca));
  assert.deepEqual(leaf.keyUsage, ["1.3.6.1.5.5.7.3.1"]); // Node's keyUsage is the EKU list
  for (const key of [createPrivateKey(m.keyPem), leaf.publicKey, ca.publicKey]) {
    assert.equal(key.asymmetricKeyType, "ec");
    assert.equal(key.asymmetricKeyDetails?.namedCurve, "prime256v1");
  }
  assert.ok(certificateCovers(m.certPem, ["LOCALHOST", "hub1.localhost"], ["127.0.0.1"]));
  assert.ok(!certificateCovers(m.certPem, ["other.localhost"], []));
  assert.ok(!certificateCovers(m.certPem, [], ["::1"]));
});

async function handshake(m: TlsMaterial, opts: { servername?: string; host?: string }): Promise<void> {
  const server = tls.createServer({ key: m.keyPem, cert: m.certPem }, (s) => s.end("ok"));
  await new Promise<void>((res) => server.listen(0, "127.0.0.1", res));
  try {
    const { port } = server.address() as AddressInfo;
    const reply = await new Promise<string>((res, rej) => {
      const socket = tls.connect({ port, host: "127.0.0.1", ca: m.caPem, rejectUnauthorized: true, ...opts });
      let data = "";
      socket.setEncoding("utf8");
      socket.on("data", (d) => {
        data += d;
      });
      socket.on("end", () => {
        socket.end();
        res(data);
      });
      socket.on("error", (err) => {
        socket.destroy();
        rej(err);
      });
    });
    assert.equal(reply, "ok");
  } finally {
    await new Promise<void>((res) => server.close(() => res()));
  }
}

test("a real TLS server with the material accepts verified clients", async () => {
  const m = await ensureTlsMaterial(tempDir(), NAMES);
  await handshake(m, { servername: "localhost" });
  await handshake(m, { servername: "hub1.localhost" });
  await handshake(m, { host: "127.0.0.1" }); // no SNI: checked against the IP SAN
  await assert.rejects(
    handshake(m, { servername: "nothere.localhost" }),
    /ERR_TLS_CERT_ALTNAME_INVALID|does not match/,
  );
});

test("a second call reuses the CA and server certificate", async () => {
  const dir = tempDir();
  const first = await ensureTlsMaterial(dir, NAMES);
  const second = await ensureTlsMaterial(dir, { dnsNames: ["LocalHost"], ipAddresses: ["127.0.0.1"] });
  assert.deepEqual(second, first);
});

test("a new DNS name reissues only the server certificate", async () => {
  const dir = tempDir();
  const first = await ensureTlsMaterial(dir, NAMES);
  const names = { dnsNames: [...NAMES.dnsNames, "hub2.localhost"], ipAddresses: NAMES.ipAddresses };
  const second = await ensureTlsMaterial(dir, names);
  assert.equal(second.caPem, first.caPem);
  assert.equal(readFileSync(join(dir, "ca.pem"), "utf8"), first.caPem);
  assert.notEqual(second.certPem, first.certPem);
  assert.notEqual(second.keyPem, first.keyPem);
  assert.ok(certificateCovers(second.certPem, names.dnsNames, names.ipAddresses));
  assert.ok(new X509Certificate(second.certPem).verify(new X509Certificate(first.caPem).publicKey));
  await handshake(second, { servername: "hub2.localhost" });
  assert.deepEqual(await ensureTlsMaterial(dir, names), second);
});

test("two data dirs get distinct CAs", async () => {
  const a = await ensureTlsMaterial(tempDir(), NAMES);
  const b = await ensureTlsMaterial(tempDir(), NAMES);
  assert.notEqual(a.caPem, b.caPem);
  assert.notEqual(new X509Certificate(a.caPem).subject, new X509Certificate(b.caPem).subject);
  assert.ok(!new X509Certificate(b.certPem).verify(new X509Certificate(a.caPem).publicKey));
});

test("certificateCovers compares IPv6 addresses in any notation", async () => {
  const m = await ensureTlsMaterial(tempDir(), { dnsNames: ["localhost"], ipAddresses: ["::1", "127.0.0.1"] });
  assert.ok(certificateCovers(m.certPem, [], ["0:0:0:0:0:0:0:1", "::1", "0000::0001"]));
  assert.ok(!certificateCovers(m.certPem, [], ["::2"]));
});
