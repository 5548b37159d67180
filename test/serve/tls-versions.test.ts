// TLS 1.0 and 1.1 never (DPS's minTlsVersion "1.2", the only value the management API takes
// today): every listener answers a client that offers at most TLS 1.1 with a protocol-version
// alert, and takes TLS 1.2 and 1.3. An RSA server certificate beside the ECDSA one serves TLS
// stacks that offer only the suites DPS recommends (TLS_ECDHE_RSA_WITH_AES_*).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import tls from "node:tls";
import { call } from "../support/management.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";

let p: ProvisioProcess;
before(async () => {
  p = await startProvisio();
});
after(async () => {
  await p.dispose();
});

/** The protocol negotiated, or the error code of a refused handshake. */
function handshake(port: number, maxVersion: tls.SecureVersion): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({
      port,
      host: "127.0.0.1",
      ca: p.ca,
      servername: "localhost",
      minVersion: "TLSv1",
      maxVersion,
      // The client side would refuse old versions itself at OpenSSL's default security level.
      ciphers: "DEFAULT@SECLEVEL=0",
    });
    s.on("secureConnect", () => {
      resolve(s.getProtocol() ?? "");
      s.destroy();
    });
    s.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

test("every listener refuses TLS 1.0 and 1.1 and takes 1.2 and 1.3", async () => {
  for (const port of [p.info.ports.https, p.info.ports.mqtt, p.info.ports.amqp]) {
    for (const old of ["TLSv1", "TLSv1.1"] as const) {
      assert.equal(await handshake(port, old), "ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION", `${port} ${old}`);
    }
    assert.equal(await handshake(port, "TLSv1.2"), "TLSv1.2");
    assert.equal(await handshake(port, "TLSv1.3"), "TLSv1.3");
  }
});

/** The key type of the certificate a client restricted to `ciphers` (TLS 1.2) or `sigalgs` (1.3) gets. */
function serverKeyType(port: number, options: tls.ConnectionOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ port, host: "127.0.0.1", ca: p.ca, servername: "localhost", ...options });
    s.on("secureConnect", () => {
      const type = s.getPeerX509Certificate()?.publicKey.asymmetricKeyType ?? "";
      const protocol = s.getProtocol();
      s.destroy();
      resolve(`${protocol} ${type}`);
    });
    s.on("error", reject);
  });
}

test("a client that offers only the RSA suites DPS recommends gets the RSA certificate; others get ECDSA", async () => {
  for (const port of [p.info.ports.https, p.info.ports.mqtt, p.info.ports.amqp]) {
    for (const suite of ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA256"]) {
      assert.equal(await serverKeyType(port, { ciphers: suite, maxVersion: "TLSv1.2" }), "TLSv1.2 rsa", suite);
    }
    assert.equal(await serverKeyType(port, { sigalgs: "rsa_pss_rsae_sha256:rsa_pkcs1_sha256" }), "TLSv1.3 rsa");
    assert.equal(await serverKeyType(port, {}), "TLSv1.3 ec", "the default client gets ECDSA (faster)");
    assert.equal(
      await serverKeyType(port, { ciphers: "ECDHE-ECDSA-AES128-GCM-SHA256", maxVersion: "TLSv1.2" }),
      "TLSv1.2 ec",
    );
  }
});

describe("PROVISIO_MIN_TLS_VERSION=1.3", () => {
  let strict: ProvisioProcess;
  before(async () => {
    strict = await startProvisio({ env: { PROVISIO_MIN_TLS_VERSION: "1.3" } });
  });
  after(async () => {
    await strict.dispose();
  });

  test("every listener refuses TLS 1.2, and an instance may then be given minTlsVersion 1.3", async () => {
    for (const port of [strict.info.ports.https, strict.info.ports.mqtt, strict.info.ports.amqp]) {
      const refused = await new Promise<string>((resolve) => {
        const s = tls.connect({
          port,
          host: "127.0.0.1",
          ca: strict.ca,
          servername: "localhost",
          maxVersion: "TLSv1.2",
        });
        s.on("secureConnect", () => {
          resolve("connected");
          s.destroy();
        });
        s.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      });
      assert.equal(refused, "ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION");
    }
    const put = await call(strict, "PUT", "/provisioningServices/provisio", {
      body: JSON.stringify({ properties: { minTlsVersion: "1.3" } }),
    });
    assert.equal(put.status, 200, put.text);
    assert.equal((put.json() as { properties: { minTlsVersion: string } }).properties.minTlsVersion, "1.3");
  });
});
