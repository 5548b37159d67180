// `provisio tls probe` against a real server: what a client limited to given versions and suites
// negotiates, on each listener, and the advice it prints when that client would fail.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { ProbeReport } from "../../src/security/tls-probe.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { runProvisio } from "../support/run-cli.js";

let p: ProvisioProcess;
before(async () => {
  p = await startProvisio();
});
after(async () => {
  await p.dispose();
});

async function probe(args: string[]): Promise<{ code: number | null; report: ProbeReport }> {
  const run = await runProvisio(["tls", "probe", "--data-dir", p.dataDir, "--output", "json", ...args]);
  assert.equal(run.stderr, "");
  return { code: run.code, report: JSON.parse(run.stdout) as ProbeReport };
}

test("a default client gets TLS 1.3 and the ECDSA certificate, trusted, on every listener", async () => {
  for (const protocol of ["https", "mqtt", "amqp"] as const) {
    const { code, report } = await probe(["--protocol", protocol]);
    assert.equal(code, 0);
    assert.equal(report.target.port, p.info.ports[protocol]);
    assert.equal(report.protocol, "TLSv1.3");
    assert.equal(report.certificate?.key, "ECDSA prime256v1");
    assert.equal(report.trusted, true);
    assert.equal(report.hostnameMatches, true);
    assert.match(report.chain?.[0]?.subject ?? "", /Provisio Development CA/);
  }
});

test("a device offering only DPS's recommended RSA suites over TLS 1.2 gets the RSA certificate", async () => {
  const { code, report } = await probe([
    "--protocol",
    "mqtt",
    "--tls-version",
    "1.2",
    "--cipher",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "--cipher",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
  ]);
  assert.equal(code, 0);
  assert.equal(report.protocol, "TLSv1.2");
  assert.match(report.cipher?.name ?? "", /^TLS_ECDHE_RSA_WITH_AES_(256_GCM_SHA384|128_GCM_SHA256)$/);
  assert.equal(report.certificate?.key, "RSA 2048");
});

test("a client that would fail exits 1 and says why: old TLS, a name not on the certificate, an untrusted CA", async () => {
  const old = await probe(["--tls-version", "1.1"]);
  assert.equal(old.code, 1);
  assert.match(old.report.error ?? "", /PROTOCOL_VERSION/);
  assert.match(old.report.hint ?? "", /Provisio takes TLS 1.2 and 1.3/);

  const name = await probe(["--host", "dps.example.net"]);
  assert.equal(name.code, 1);
  assert.equal(name.report.hostnameMatches, false);
  assert.match(name.report.hint ?? "", /--host dps\.example\.net/);

  const untrusted = await probe(["--ca-file", "/dev/null"]);
  assert.equal(untrusted.code, 1);
  assert.equal(untrusted.report.trusted, false);
  assert.match(untrusted.report.hint ?? "", /caFile/);
});

test("the text report names protocol, suite and certificate", async () => {
  const run = await runProvisio(["tls", "probe", "--data-dir", p.dataDir, "--protocol", "amqp"]);
  assert.equal(run.code, 0);
  assert.match(run.stdout, /a client like this one connects/);
  assert.match(run.stdout, /protocol {5}TLSv1\.3/);
  assert.match(run.stdout, /certificate {2}CN=localhost \(ECDSA prime256v1\)/);
});

test("nothing to probe: a clear message", async () => {
  const run = await runProvisio(["tls", "probe", "--data-dir", "/nonexistent-provisio-dir"]);
  assert.equal(run.code, 1);
  assert.match(
    run.stderr,
    /is 'provisio serve --data-dir \/nonexistent-provisio-dir' running\? Or pass --address and --port/,
  );
});
