// The `provisio serve` contract other tests and users rely on (design.md, "Running it").
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { once } from "node:events";
import { readFileSync, rmSync, statSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { request } from "node:https";
import { after, describe, test } from "node:test";
import { connect } from "node:tls";
import type { IndividualEnrollment } from "azure-iot-provisioning-service/dist/interfaces.js";
import { createSasToken } from "../../src/attestation/sas-token.js";
import { parseConnectionString } from "../../src/domain/connection-string.js";
import { BIN, newDataDir, type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { serviceClient } from "../support/service-client.js";

const enrollment = (registrationId: string) =>
  ({ registrationId, attestation: { type: "symmetricKey" } }) as IndividualEnrollment;

/** Open a TLS connection, send `bytes`, collect what comes back until the server closes. */
/** Sends `bytes` and resolves with what came back before the close, or once `enoughOf` says so. */
async function exchange(
  p: ProvisioProcess,
  port: number,
  bytes: Buffer,
  enoughOf: (received: Buffer) => boolean = () => false,
): Promise<Buffer> {
  const socket = connect({ host: "127.0.0.1", port, servername: "localhost", ca: p.ca });
  await once(socket, "secureConnect");
  const chunks: Buffer[] = [];
  const enough = new Promise<void>((resolve) => {
    socket.on("data", (c: Buffer) => {
      chunks.push(c);
      if (enoughOf(Buffer.concat(chunks))) resolve();
    });
  });
  socket.write(bytes);
  await Promise.race([once(socket, "close"), enough]);
  socket.destroy();
  return Buffer.concat(chunks);
}

describe("provisio serve", () => {
  const cleanup: ProvisioProcess[] = [];
  after(async () => {
    for (const p of cleanup) await p.dispose();
  });

  test("first start writes provisio.json with real ports, the CA, the ID scope and an owner connection string", async () => {
    const p = await startProvisio();
    cleanup.push(p);
    const { info } = p;
    assert.match(info.idScope, /^0ne[0-9A-F]{8}$/);
    assert.equal(info.host, "localhost");
    assert.ok(info.caFile.startsWith("/"), "caFile is absolute");
    for (const port of Object.values(info.ports)) assert.ok(Number.isInteger(port) && port > 0);
    assert.deepEqual(Object.keys(info.ports).sort(), ["amqp", "https", "metrics", "mqtt"]);
    assert.equal(new Set(Object.values(info.ports)).size, 4, "four listeners, four ports");
    assert.match(
      info.serviceConnectionString,
      /^HostName=localhost;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=[A-Za-z0-9+/=]{44}$/,
    );
    assert.equal(info.hubs.length, 1, "one built-in hub by default");
    assert.equal(info.hubs[0]?.hostName, "hub-1.localhost");

    const server = new X509Certificate(readFileSync(`${p.dataDir}/tls/server.pem`));
    assert.ok(server.verify(new X509Certificate(p.ca).publicKey), "the server certificate is signed by the CA");
    assert.equal(server.publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1");
    assert.match(server.subjectAltName ?? "", /DNS:localhost/);
    assert.match(server.subjectAltName ?? "", /IP Address:127\.0\.0\.1/);
    assert.match(server.subjectAltName ?? "", /DNS:hub-1\.localhost/);
    assert.equal(statSync(`${p.dataDir}/master.key`).mode & 0o777, 0o600);
    assert.equal(statSync(`${p.dataDir}/tls/server.key`).mode & 0o777, 0o600);
  });

  test("a restart keeps every record, the ID scope, the keys and the CA", async () => {
    const first = await startProvisio();
    const client = serviceClient(first);
    await client.createOrUpdateIndividualEnrollment(enrollment("survivor"));
    const keys = (await client.getIndividualEnrollmentAttestationMechanism("survivor")).responseBody;
    assert.equal(await first.stop(), 0, "SIGTERM exits 0");

    const second = await startProvisio({ dataDir: first.dataDir });
    cleanup.push(second);
    assert.equal(second.info.idScope, first.info.idScope);
    assert.equal(second.info.serviceConnectionString, first.info.serviceConnectionString);
    assert.deepEqual(second.ca, first.ca);
    const again = serviceClient(second);
    assert.deepEqual((await again.getIndividualEnrollmentAttestationMechanism("survivor")).responseBody, keys);
  });

  test("two servers on two data dirs are independent", async () => {
    const a = await startProvisio();
    const b = await startProvisio();
    cleanup.push(a, b);
    assert.notEqual(a.info.idScope, b.info.idScope);
    assert.notDeepEqual(a.ca, b.ca);
    await serviceClient(a).createOrUpdateIndividualEnrollment(enrollment("only-in-a"));
    await assert.rejects(serviceClient(b).getIndividualEnrollment("only-in-a"), /Not found/);
    // A's key does not open B.
    const keyOfA = a.info.serviceConnectionString.split("SharedAccessKey=")[1] ?? "";
    const crossed = b.info.serviceConnectionString.replace(/SharedAccessKey=.*/, `SharedAccessKey=${keyOfA}`);
    await assert.rejects(
      serviceClient(b, crossed).getIndividualEnrollment("x"),
      (e: Error) => e.name === "UnauthorizedError",
    );
  });

  test("SIGTERM lets an in-flight request finish, then exits 0 with the record stored", async () => {
    const p = await startProvisio();
    const cs = parseConnectionString(p.info.serviceConnectionString);
    assert.ok(cs);
    const body = Buffer.from(JSON.stringify(enrollment("inflight")));
    const req = request({
      host: "127.0.0.1",
      port: p.info.ports.https,
      servername: "localhost",
      ca: p.ca,
      agent: false,
      method: "PUT",
      path: "/enrollments/inflight",
      headers: {
        host: "localhost",
        authorization: createSasToken(cs.key, "localhost", Math.floor(Date.now() / 1000) + 600, cs.keyName),
        "content-type": "application/json",
        "content-length": String(body.length),
      },
    });
    const response = once(req, "response");
    req.write(body.subarray(0, 10));
    await new Promise((r) => setTimeout(r, 200));
    const exited = p.stop();
    await new Promise((r) => setTimeout(r, 200));
    req.end(body.subarray(10));
    const [res] = (await response) as [IncomingMessage];
    res.resume();
    assert.equal(res.statusCode, 200, "the request that was in flight at SIGTERM completed");
    assert.equal(await exited, 0);

    const again = await startProvisio({ dataDir: p.dataDir });
    cleanup.push(again);
    await serviceClient(again).getIndividualEnrollment("inflight");
  });

  test("the MQTT listener refuses an unknown hub with CONNACK 2; the AMQP listener offers SASL PLAIN and TPM", async () => {
    const p = await startProvisio();
    cleanup.push(p);
    // A minimal MQTT 3.1.1 CONNECT naming no hub: CONNACK with return code 2 (identifier rejected).
    const connectPacket = Buffer.from([
      0x10, 0x0e, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x3c, 0x00, 0x02, 0x69, 0x64,
    ]);
    assert.deepEqual([...(await exchange(p, p.info.ports.mqtt, connectPacket))], [0x20, 0x02, 0x00, 0x02]);
    // The SASL header is answered with ours and the mechanisms (device-api.md §7.1).
    const amqpHeader = Buffer.from("AMQP\x03\x01\x00\x00", "latin1");
    // Our header, then one whole frame: its size is the frame's first four bytes.
    const answer = await exchange(
      p,
      p.info.ports.amqp,
      amqpHeader,
      (b) => b.length >= 12 && b.length >= 8 + b.readUInt32BE(8),
    );
    assert.deepEqual(answer.subarray(0, 8), amqpHeader);
    const mechanisms = answer.subarray(8).toString("latin1");
    for (const name of ["PLAIN", "TPM"]) assert.ok(mechanisms.includes(name), `offers ${name}`);
  });

  test("SIGTERM ends idle MQTT and AMQP device connections instead of waiting out their time-outs", async () => {
    const p = await startProvisio();
    cleanup.push(p);
    const idle = await Promise.all(
      [p.info.ports.mqtt, p.info.ports.amqp].map(async (port) => {
        const socket = connect({ host: "127.0.0.1", port, servername: "localhost", ca: p.ca });
        socket.on("error", () => {});
        await once(socket, "secureConnect");
        return socket;
      }),
    );
    // Not once(): a destroyed connection may report a reset first, and once() rejects on errors.
    const closed = idle.map((socket) => new Promise((resolve) => socket.once("close", resolve)));
    // Both would otherwise stay open until their 30 s setup time-outs.
    const stopped = await Promise.race([
      p.stop(),
      new Promise((resolve) => setTimeout(resolve, 15_000, "still running")),
    ]);
    assert.equal(stopped, 0);
    await Promise.all(closed);
  });

  test("settings come from PROVISIO_* environment variables too", async () => {
    const dataDir = newDataDir();
    const child = spawn(process.execPath, [BIN, "serve"], {
      env: {
        ...process.env,
        PROVISIO_DATA_DIR: dataDir,
        PROVISIO_HOST: "provisio.test",
        PROVISIO_BIND: "127.0.0.1",
        PROVISIO_HTTPS_PORT: "0",
        PROVISIO_MQTT_PORT: "0",
        PROVISIO_AMQP_PORT: "0",
        PROVISIO_METRICS_PORT: "0",
        PROVISIO_LOG_LEVEL: "warn",
      },
      stdio: "ignore",
    });
    try {
      let text = "";
      for (let i = 0; i < 400 && text === ""; i++) {
        await new Promise((r) => setTimeout(r, 25));
        try {
          text = readFileSync(`${dataDir}/provisio.json`, "utf8");
        } catch {}
      }
      const info = JSON.parse(text) as { host: string; serviceConnectionString: string };
      assert.equal(info.host, "provisio.test");
      assert.match(info.serviceConnectionString, /^HostName=provisio\.test;/);
      const san = new X509Certificate(readFileSync(`${dataDir}/tls/server.pem`)).subjectAltName ?? "";
      assert.match(san, /DNS:provisio\.test/);
    } finally {
      child.kill("SIGTERM");
      await once(child, "exit");
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test("a bad flag is a clear error and exit code 1", async () => {
    const child = spawn(process.execPath, [BIN, "serve", "--https-port", "seventy"], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let err = "";
    child.stderr?.on("data", (d: Buffer) => {
      err += d.toString();
    });
    const [code] = await once(child, "exit");
    assert.equal(code, 1);
    assert.match(err, /--https-port must be a port number/);
  });
});
