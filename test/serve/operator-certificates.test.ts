// Certificates an operator brings (issue 20 "TLS"): `--tls-cert`/`--tls-key` given twice serve an
// RSA and an ECDSA chain side by side, each client getting the one it can use; devices trusting
// the operator's root register with the real SDK; SIGHUP swaps in renewed files without dropping
// open connections, and keeps serving the old ones when the new ones do not check out.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import tls from "node:tls";
import { httpTransport, registerWithKey } from "../support/device-clients.js";
import { enrollIndividual } from "../support/enrollments.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { type OperatorPki, operatorPki, serverLeaf, writePair } from "../support/server-certs.js";
import { serviceClient } from "../support/service-client.js";
import { until } from "../support/until.js";

let dir: string;
let pki: OperatorPki;
let p: ProvisioProcess;
let ecFiles: [string, string];
let ecSerial: string;
let rsaSerial: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "provisio-operator-tls-"));
  pki = await operatorPki();
  const ec = await serverLeaf(pki, "ec");
  const rsa = await serverLeaf(pki, "rsa");
  [ecSerial, rsaSerial] = [ec.serial, rsa.serial];
  ecFiles = writePair(dir, "ec", ec);
  const rsaFiles = writePair(dir, "rsa", rsa);
  const [rootFile] = writePair(dir, "root", { chainPem: pki.root.certPem, keyPem: pki.root.keyPem });
  p = await startProvisio({
    args: [
      ...["--tls-cert", ecFiles[0], "--tls-key", ecFiles[1]],
      ...["--tls-cert", rsaFiles[0], "--tls-key", rsaFiles[1]],
      ...["--tls-ca", rootFile],
    ],
  });
});
after(async () => {
  await p.dispose();
  rmSync(dir, { recursive: true, force: true });
});

/** The serial of the leaf a client gets, its key type and how long the chain it was sent is. */
function served(port: number, options: tls.ConnectionOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ port, host: "127.0.0.1", servername: "localhost", ca: p.ca, ...options });
    s.on("secureConnect", () => {
      const leaf = s.getPeerCertificate(true);
      const type = s.getPeerX509Certificate()?.publicKey.asymmetricKeyType;
      const chain = leaf.issuerCertificate && leaf.issuerCertificate !== leaf ? "chained" : "leaf only";
      s.destroy();
      resolve(`${leaf.serialNumber.toLowerCase()} ${type} ${chain}`);
    });
    s.on("error", reject);
  });
}

test("provisio.json names the operator's CA, and a device that trusts it registers over HTTPS", async () => {
  assert.equal(p.ca.toString(), pki.root.certPem);
  const key = await enrollIndividual(serviceClient(p), "operator-cert-device");
  const result = await registerWithKey(p, httpTransport(p), "operator-cert-device", key);
  assert.equal(result.status, "assigned");
});

test("each listener serves the RSA chain to RSA-only clients and the ECDSA chain to the others", async () => {
  for (const port of [p.info.ports.https, p.info.ports.mqtt, p.info.ports.amqp]) {
    assert.equal(await served(port), `${ecSerial} ec chained`);
    assert.equal(
      await served(port, { ciphers: "ECDHE-RSA-AES128-GCM-SHA256", maxVersion: "TLSv1.2" }),
      `${rsaSerial} rsa chained`,
    );
  }
});

/** An HTTP/1.1 exchange on an already open TLS connection: proves it survived. */
function ask(socket: tls.TLSSocket): Promise<string> {
  return new Promise((resolve, reject) => {
    socket.once("data", (d: Buffer) => resolve(d.toString().split("\r\n")[0] ?? ""));
    socket.once("error", reject);
    socket.write("GET /nothing-here HTTP/1.1\r\nHost: localhost\r\n\r\n");
  });
}

test("SIGHUP serves renewed files to new connections and keeps open ones; bad files are not taken", async () => {
  const open = tls.connect({ port: p.info.ports.https, host: "127.0.0.1", servername: "localhost", ca: p.ca });
  await new Promise((resolve) => open.once("secureConnect", resolve));
  assert.match(await ask(open), /^HTTP\/1.1 404/);

  const renewed = await serverLeaf(pki, "ec");
  writePair(dir, "ec", renewed);
  p.child.kill("SIGHUP");
  await until(async () => (await served(p.info.ports.mqtt)).startsWith(renewed.serial), 5_000, "the renewed leaf");
  assert.equal(await served(p.info.ports.amqp), `${renewed.serial} ec chained`);
  assert.match(await ask(open), /^HTTP\/1.1 404/, "the connection opened before the reload still works");
  open.destroy();

  // A key that is not the certificate's: the reload is refused and the renewed leaf stays.
  const other = await serverLeaf(pki, "ec");
  writePair(dir, "ec", { chainPem: other.chainPem, keyPem: renewed.keyPem });
  p.child.kill("SIGHUP");
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(await served(p.info.ports.https), `${renewed.serial} ec chained`);
  assert.equal(p.child.exitCode, null, "still serving");

  // Fixed files are taken at the next SIGHUP.
  writePair(dir, "ec", other);
  p.child.kill("SIGHUP");
  await until(async () => (await served(p.info.ports.https)).startsWith(other.serial), 5_000, "the fixed leaf");
});

test("serve refuses to start with a key that is not its certificate's, and says which files", async () => {
  const wrong = await serverLeaf(pki, "ec");
  const [cert] = writePair(dir, "wrong", wrong);
  await assert.rejects(startProvisio({ args: ["--tls-cert", cert, "--tls-key", ecFiles[1]] }), (e: Error) =>
    e.message.includes(`--tls-key '${ecFiles[1]}' is not the key of the first certificate in '${cert}'`),
  );
  await assert.rejects(
    startProvisio({ args: ["--tls-cert", cert] }),
    /--tls-cert and --tls-key must come in pairs: 1 certificate file\(s\), 0 key file\(s\)/,
  );
});

test("serve refuses a --host its certificate does not cover, naming the names it does", async () => {
  await assert.rejects(
    startProvisio({ args: ["--tls-cert", ecFiles[0], "--tls-key", ecFiles[1], "--host", "dps.example.test"] }),
    /The server certificate \(--tls-cert .*\) covers localhost, 127\.0\.0\.1, not --host dps\.example\.test: devices dialling dps\.example\.test would refuse it\. Give --host \(PROVISIO_HOST\) a name the certificate covers, or bring a certificate for dps\.example\.test\./,
  );
});

test("without --tls-ca devices are told to trust the top of the chain sent", async () => {
  const q = await startProvisio({ args: ["--tls-cert", ecFiles[0], "--tls-key", ecFiles[1]] });
  try {
    assert.equal(q.ca.toString(), pki.intermediate.certPem);
    assert.match(q.info.caFile, /operator-ca\.pem$/);
  } finally {
    await q.dispose();
  }
});
