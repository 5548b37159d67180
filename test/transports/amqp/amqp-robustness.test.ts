// The AMQP listener under bad and odd clients (issue: AMQP registration): real TLS on 127.0.0.1,
// the real engine in-process, short setup and idle limits. Each bad connection is closed alone
// while devices keep registering; a fuzzer throws thousands of random and mutated frames at it.
// Set AMQP_FUZZ_SEED to replay a fuzz run.
import assert from "node:assert/strict";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import tls from "node:tls";
import rhea from "rhea";
import WebSocket from "ws";
import { createSasToken } from "../../../src/attestation/sas-token.js";
import { MAX_MESSAGE_BYTES } from "../../../src/domain/json.js";
import {
  AMQP_HEADER,
  attachLinks,
  begin,
  open,
  readFrame,
  registerMessage,
  SASL_HEADER,
  saslAnonymous,
  saslInit,
  saslPlain,
  saslResponse,
  transfer,
  transferBytes,
} from "../../../src/load/amqp-frames.js";
import { listenerTls } from "../../../src/security/listener-tls.js";
import { createAmqpTlsServer } from "../../../src/transports/amqp/amqp-listener.js";
import { createAmqpWebSocketHandler } from "../../../src/transports/amqp/amqp-websocket.js";
import { serveWebSocketUpgrades } from "../../../src/transports/websocket-upgrades.js";
import { openBlobInSoftware, testEndorsementKey, testStorageRootKey } from "../../attestation/tpm/tpm-keys.js";
import { type AmqpConnectOptions, connectDpsAmqp, type DpsAmqpDevice } from "../../support/dps-amqp.js";
import { type InProcess, startInProcess } from "../../support/in-process.js";
import type { ProvisioProcess } from "../../support/provisio-process.js";
import { mutatePacket, pick, rng } from "../mqtt/fuzz-support.js";

const API = "?api-version=2021-10-01";
const LIMITS = { setupTimeoutMs: 400, idleTimeoutMs: 600, maxPendingBytes: 256 * 1024 };
/** The sasl-outcome performative's descriptor, and the PLAIN mechanism's name in a sasl-init. */
const SASL_OUTCOME = Buffer.from([0x00, 0x53, 0x44]);
const SASL_PLAIN = Buffer.from("PLAIN");
const SEED = Number(process.env.AMQP_FUZZ_SEED ?? Date.now() % 2 ** 31);

describe("the AMQP listener with bad and odd clients", () => {
  let p: InProcess;
  let server: tls.Server;
  let webServer: https.Server;
  let webSockets: { close(): void };
  /** What the raw-device helper needs of a running provisio: the port, the CA, the ID scope. */
  let target: ProvisioProcess;
  const keys = new Map<string, string>();

  const enroll = async (registrationId: string) => {
    const r = await p.request("PUT", `/enrollments/${registrationId}${API}`, {
      body: { registrationId, attestation: { type: "symmetricKey" } },
    });
    assert.equal(r.status, 200, r.text);
    keys.set(
      registrationId,
      (r.json() as { attestation: { symmetricKey: { primaryKey: string } } }).attestation.symmetricKey.primaryKey,
    );
  };
  const token = (registrationId: string) =>
    createSasToken(
      keys.get(registrationId) ?? "",
      `${p.info.idScope}/registrations/${registrationId}`,
      Math.floor(Date.now() / 1000) + 600,
      "registration",
    );
  const address = (registrationId: string) => `${p.info.idScope}/registrations/${registrationId}`;

  const connect = async (registrationId: string, extra: Partial<AmqpConnectOptions> = {}): Promise<DpsAmqpDevice> => {
    const c = await connectDpsAmqp(target, "amqp", { registrationId, password: token(registrationId), ...extra });
    assert.ok(c.ok, c.ok ? "" : c.error);
    return c.device;
  };

  /** A good device still registers: whatever happened on other connections, the listener serves. */
  const stillServes = async () => {
    const device = await connect("good-dev");
    try {
      const a = await device.register();
      assert.equal(a.kind, "response", JSON.stringify(a));
      if (a.kind === "response") assert.equal(a.body.status, "assigned");
    } finally {
      await device.end();
    }
  };

  /**
   * A raw TLS connection: send `chunks` and resolve with what came back once the listener closes it
   * (failing if it is still open after `ms`). Like the SDKs, the device waits for the SASL outcome
   * before it goes on: rhea takes no AMQP header while a SASL PLAIN check is still running.
   * `endAfter`: end the device's side once both links are attached.
   */
  const rawUntilClosed = async (chunks: Buffer[], ms = 5_000, endAfter = false): Promise<Buffer> => {
    const socket = tls.connect({
      host: "127.0.0.1",
      port: (server.address() as AddressInfo).port,
      ca: target.ca,
      servername: "localhost",
    });
    socket.on("error", () => {});
    await once(socket, "secureConnect");
    const received: Buffer[] = [];
    let outcome: () => void = () => {};
    const saslDone = new Promise<void>((resolve) => {
      outcome = resolve;
    });
    let linked: () => void = () => {};
    const attached = new Promise<void>((resolve) => {
      linked = resolve;
    });
    socket.on("data", (c: Buffer) => {
      received.push(c);
      const all = Buffer.concat(received);
      if (all.includes(SASL_OUTCOME)) outcome();
      if (all.includes("requests")) linked();
    });
    const closed = new Promise((resolve) => socket.once("close", resolve));
    const plain = chunks.findIndex((c) => c.includes(SASL_PLAIN));
    for (const [i, c] of chunks.entries()) {
      socket.write(c);
      if (i === plain) await Promise.race([saslDone, closed]);
    }
    // Half-open: the device ends its side once its links are attached.
    if (endAfter) {
      await Promise.race([attached, closed]);
      socket.end();
    }
    const timer = setTimeout(() => socket.destroy(new Error("still open")), ms);
    // Not once(): it rejects on the reset a destroyed socket may report first.
    await closed;
    clearTimeout(timer);
    assert.notEqual(socket.errored?.message, "still open", "the listener closed it");
    return Buffer.concat(received);
  };

  before(async () => {
    p = await startInProcess();
    server = createAmqpTlsServer(listenerTls(p.service.tls()), p.service.engine, { limits: LIMITS });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    // AMQP over WebSockets, alone on an HTTPS listener of its own.
    webServer = https.createServer(listenerTls(p.service.tls()));
    webSockets = serveWebSocketUpgrades(webServer, [createAmqpWebSocketHandler(p.service.engine, { limits: LIMITS })]);
    webServer.listen(0, "127.0.0.1");
    await once(webServer, "listening");
    const ca = readFileSync(p.service.tls().caFile);
    target = {
      info: {
        ...p.info,
        ports: {
          ...p.info.ports,
          amqp: (server.address() as AddressInfo).port,
          https: (webServer.address() as AddressInfo).port,
        },
      },
      ca,
    } as ProvisioProcess;
    for (const id of ["good-dev", "c-shaped-dev", "big-dev", "idle-dev", "mismatch-dev", "fuzz-dev"]) await enroll(id);
  });
  after(async () => {
    webSockets.close();
    webServer.closeAllConnections();
    await new Promise<void>((resolve) => webServer.close(() => resolve()));
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await p.dispose();
  });

  test("a device registers and polls its operation over raw AMQP; the answers are as §7.4 says", async () => {
    const device = await connect("good-dev");
    try {
      const a = await device.register();
      assert.equal(a.kind, "response");
      if (a.kind !== "response") return;
      assert.equal(typeof a.correlationId, "string", "the request's string id, as a string");
      assert.equal(a.properties["iotdps-operation-type"], "iotdps-register");
      assert.equal(a.properties["iotdps-status"], "assigned");
      assert.equal(a.body.status, "assigned");
      const polled = await device.poll(String(a.body.operationId));
      assert.equal(polled.kind, "response");
      if (polled.kind === "response") assert.equal(polled.body.status, "assigned");
      const unknown = await device.poll("4.0000000000000000.00000000-0000-0000-0000-000000000000");
      assert.equal(unknown.kind, "rejected");
      if (unknown.kind === "rejected") {
        assert.equal(unknown.condition, "amqp:not-found");
        assert.equal((JSON.parse(unknown.description) as { errorCode: number }).errorCode, 404302);
      }
    } finally {
      await device.end();
    }
  });

  test("a device shaped like the C SDK: amqps:// link addresses, no correlation id", async () => {
    const device = await connect("c-shaped-dev", {
      address: `amqps://localhost/${address("c-shaped-dev")}`,
    });
    try {
      const a = await device.send({
        application_properties: { "iotdps-operation-type": "iotdps-register" },
        body: rhea.message.data_section(Buffer.from(JSON.stringify({ registrationId: "c-shaped-dev" }))),
      });
      assert.equal(a.kind, "response", JSON.stringify(a));
      if (a.kind === "response") assert.equal(a.body.status, "assigned");
    } finally {
      await device.end();
    }
  });

  test("a device shaped like the C# SDK: an empty register body, a payload without the id, a status request with an amqp-value body", async () => {
    const device = await connect("c-shaped-dev");
    try {
      const empty = await device.send({
        application_properties: { "iotdps-operation-type": "iotdps-register", "iotdps-forceRegistration": false },
        body: rhea.message.data_section(Buffer.alloc(0)),
      });
      assert.equal(empty.kind, "response", JSON.stringify(empty));
      const withPayload = await device.send({
        application_properties: { "iotdps-operation-type": "iotdps-register", "iotdps-forceRegistration": false },
        body: rhea.message.data_section(Buffer.from(JSON.stringify({ payload: { modelId: "dtmi:x;1" } }))),
      });
      assert.equal(withPayload.kind, "response", JSON.stringify(withPayload));
      if (withPayload.kind !== "response") return;
      assert.equal(withPayload.body.status, "assigned");
      const status = await device.send({
        application_properties: {
          "iotdps-operation-type": "iotdps-get-operationstatus",
          "iotdps-operation-id": String(withPayload.body.operationId),
        },
        body: "iotdps-get-operationstatus",
      });
      assert.equal(status.kind, "response", JSON.stringify(status));
    } finally {
      await device.end();
    }
  });

  test("bad requests are rejected with a DPS error and the connection stays usable", async () => {
    const device = await connect("big-dev");
    try {
      const cases: [rhea.Message, string, number][] = [
        [
          {
            application_properties: { "iotdps-operation-type": "iotdps-register" },
            body: rhea.message.data_section(Buffer.alloc(MAX_MESSAGE_BYTES + 1, 0x20)),
          },
          "amqp:link:message-size-exceeded",
          413001,
        ],
        [
          {
            application_properties: { "iotdps-operation-type": "iotdps-register" },
            body: rhea.message.data_section(Buffer.from("{not json")),
          },
          "com.microsoft:argument-error",
          400001,
        ],
        [
          { application_properties: { "iotdps-operation-type": "iotdps-nothing" }, body: "" },
          "com.microsoft:argument-error",
          400004,
        ],
        [{ body: "no properties" }, "com.microsoft:argument-error", 400004],
        [
          {
            application_properties: { "iotdps-operation-type": "iotdps-register" },
            body: rhea.message.data_section(Buffer.from(JSON.stringify({ registrationId: "someone-else" }))),
          },
          "com.microsoft:argument-error",
          400302,
        ],
      ];
      for (const [message, condition, errorCode] of cases) {
        const a = await device.send(message);
        assert.equal(a.kind, "rejected", JSON.stringify(a));
        if (a.kind !== "rejected") continue;
        assert.equal(a.condition, condition);
        const body = JSON.parse(a.description) as { errorCode: number; message: string; trackingId: string };
        assert.equal(body.errorCode, errorCode, body.message);
      }
      const fine = await device.register();
      assert.equal(fine.kind, "response");
    } finally {
      await device.end();
    }
  });

  test("without SASL (how an X.509 device comes), an unknown ID scope is rejected amqp:not-found with 404301", async () => {
    const c = await connectDpsAmqp(target, "amqp", { registrationId: "good-dev", idScope: "0ne00000000" });
    assert.ok(c.ok, c.ok ? "" : c.error);
    try {
      const a = await c.device.register();
      assert.equal(a.kind, "rejected");
      if (a.kind !== "rejected") return;
      assert.equal(a.condition, "amqp:not-found");
      assert.equal((JSON.parse(a.description) as { errorCode: number }).errorCode, 404301);
    } finally {
      await c.device.end();
    }
  });

  test("a link naming another device than SASL did is refused, with the reason", async () => {
    const c = await connectDpsAmqp(target, "amqp", {
      registrationId: "mismatch-dev",
      password: token("mismatch-dev"),
      address: address("good-dev"),
    });
    assert.equal(c.ok, false);
    if (!c.ok) assert.match(c.error, /amqp:unauthorized-access: the link is for/);
  });

  test("garbage instead of a protocol header, or after it, closes that connection alone", async () => {
    await rawUntilClosed([Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n")]);
    await rawUntilClosed([SASL_HEADER, Buffer.from([0, 0, 0, 0x10, 2, 1, 0, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4])]);
    await rawUntilClosed([AMQP_HEADER, Buffer.from([0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0])]);
    await stillServes();
  });

  test("a client that never finishes SASL, or never attaches its links, is closed after the setup time", async () => {
    await rawUntilClosed([SASL_HEADER], 3_000);
    await rawUntilClosed([SASL_HEADER, saslAnonymous(), AMQP_HEADER, open(), begin()], 3_000);
    await rawUntilClosed(
      [
        SASL_HEADER,
        saslAnonymous(),
        AMQP_HEADER,
        open(),
        begin(),
        attachLinks(address("good-dev"))[0] ?? Buffer.alloc(0),
      ],
      3_000,
    );
    await stillServes();
  });

  test("an attached device that goes silent is closed after twice the idle time; a half-open one at once", async () => {
    const setup = [
      SASL_HEADER,
      saslPlain(address("idle-dev"), token("idle-dev")),
      AMQP_HEADER,
      open(),
      begin(),
      ...attachLinks(address("idle-dev")),
    ];
    // Attached first: the listener answered both attaches before it judged the silence.
    const attached = (received: Buffer) => received.includes("answers") && received.includes("requests");
    assert.ok(attached(await rawUntilClosed(setup, 4_000)));
    assert.ok(attached(await rawUntilClosed(setup, 1_500, true)));
    await stillServes();
  });

  test("a delivery that never ends is cut off once it holds more than the pending-bytes bound", async () => {
    const setup = [
      SASL_HEADER,
      saslPlain(address("big-dev"), token("big-dev")),
      AMQP_HEADER,
      open(),
      begin(),
      ...attachLinks(address("big-dev")),
    ];
    const first = transfer(0, registerMessage("big-dev"), true);
    const chunk = Buffer.alloc(32 * 1024, 0x41);
    const pieces = Array.from({ length: 12 }, () => transferBytes(0, chunk, true));
    const received = await rawUntilClosed([...setup, first, ...pieces], 3_000);
    assert.ok(received.includes("requests"), "the links were attached: the bound, not the setup time, closed it");
    await stillServes();
  });

  test("over WebSockets: garbage, a stalled SASL and an oversized frame close that WebSocket alone", async () => {
    const url = `wss://127.0.0.1:${target.info.ports.https}/$iothub/websocket`;
    /** Opens an AMQPWSB10 WebSocket, sends `frames`; true once the server closed it, false if `ms` passed first. */
    const rawWs = async (frames: Buffer[], ms = 3_000) => {
      const ws = new WebSocket(url, ["AMQPWSB10"], {
        ca: target.ca,
        servername: "localhost",
      } as WebSocket.ClientOptions);
      ws.on("error", () => {});
      await once(ws, "open");
      const closed = new Promise((resolve) => ws.once("close", resolve));
      for (const f of frames) ws.send(f);
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        ws.terminate();
      }, ms);
      await closed;
      clearTimeout(timer);
      return !timedOut; // true: the server closed it
    };
    assert.ok(await rawWs([Buffer.from("not amqp at all")]), "garbage instead of a header");
    assert.ok(await rawWs([SASL_HEADER]), "a SASL that never finishes");
    assert.ok(await rawWs([SASL_HEADER, Buffer.alloc(LIMITS.maxPendingBytes + 1)]), "a frame over the bound");
    // A device over AMQP-WS still registers.
    const c = await connectDpsAmqp(target, "amqp-ws", { registrationId: "good-dev", password: token("good-dev") });
    assert.ok(c.ok, c.ok ? "" : c.error);
    try {
      const a = await c.device.register();
      assert.equal(a.kind, "response", JSON.stringify(a));
    } finally {
      await c.device.end();
    }
  });

  describe("SASL TPM", () => {
    const ek = testEndorsementKey();
    const srk = testStorageRootKey();
    before(async () => {
      const r = await p.request("PUT", `/enrollments/tpm-sasl-dev${API}`, {
        body: {
          registrationId: "tpm-sasl-dev",
          attestation: { type: "tpm", tpm: { endorsementKey: ek.tpm2b.toString("base64") } },
        },
      });
      assert.equal(r.status, 200, r.text);
    });

    /** Runs SASL TPM by hand; `respond` answers each challenge. Resolves to the outcome code. */
    const saslTpm = async (endorsementKey: Buffer, respond: (challenge: Buffer) => Buffer): Promise<number> => {
      const socket = tls.connect({
        host: "127.0.0.1",
        port: (server.address() as AddressInfo).port,
        ca: target.ca,
        servername: "localhost",
      });
      socket.on("error", () => {});
      await once(socket, "secureConnect");
      const init = Buffer.concat([Buffer.from(`\0${p.info.idScope}\0tpm-sasl-dev\0`, "utf8"), endorsementKey]);
      socket.write(Buffer.concat([SASL_HEADER, saslInit("TPM", init)]));
      let buffer = Buffer.alloc(0);
      let headerSeen = false;
      try {
        return await new Promise<number>((resolve, reject) => {
          socket.on("close", () => reject(new Error("closed before the SASL outcome")));
          socket.on("data", (chunk: Buffer) => {
            buffer = Buffer.concat([buffer, chunk]);
            if (!headerSeen && buffer.length >= 8) {
              buffer = buffer.subarray(8);
              headerSeen = true;
            }
            for (let frame = readFrame(buffer); frame; frame = readFrame(buffer)) {
              buffer = buffer.subarray(frame.size);
              if (frame.name === "sasl_challenge")
                socket.write(saslResponse(respond(frame.fields.challenge as Buffer)));
              if (frame.name === "sasl_outcome") resolve(Number(frame.fields.code));
            }
          });
        });
      } finally {
        socket.destroy();
      }
    };

    test("the enrolled EK gets its blob in segments; the SAS signed with the key it carries is admitted", async () => {
      const segments: Buffer[] = [];
      const code = await saslTpm(ek.tpm2b, (challenge) => {
        if (challenge.length === 1) return Buffer.concat([Buffer.from([0]), srk.tpm2b]);
        segments.push(challenge.subarray(1));
        if (challenge[0] === 0x80) return Buffer.from([0]);
        assert.equal(challenge[0], 0xc0, "the last segment");
        const key = openBlobInSoftware(ek, srk, Buffer.concat(segments));
        const sr = encodeURIComponent(`${p.info.idScope}/registrations/tpm-sasl-dev`);
        const token = createSasToken(key.toString("base64"), sr, Math.floor(Date.now() / 1000) + 600, "registration");
        return Buffer.concat([Buffer.from([0]), Buffer.from(token)]);
      });
      assert.ok(segments.length >= 2, "more than one segment");
      assert.equal(code, 0, "SASL ok");
    });

    test("another EK gets no challenge: the outcome is an authentication failure", async () => {
      let segments = 0;
      const code = await saslTpm(testEndorsementKey().tpm2b, (challenge) => {
        if (challenge.length > 1) segments++;
        return Buffer.concat([Buffer.from([0]), srk.tpm2b]);
      });
      assert.equal(segments, 0);
      assert.equal(code, 1, "auth");
    });

    test("a SAS signed with another key is an authentication failure", async () => {
      const code = await saslTpm(ek.tpm2b, (challenge) => {
        if (challenge.length === 1) return Buffer.concat([Buffer.from([0]), srk.tpm2b]);
        if (challenge[0] === 0x80) return Buffer.from([0]);
        const sr = encodeURIComponent(`${p.info.idScope}/registrations/tpm-sasl-dev`);
        const forged = createSasToken(Buffer.alloc(32, 1).toString("base64"), sr, Math.floor(Date.now() / 1000) + 600);
        return Buffer.concat([Buffer.from([0]), Buffer.from(forged)]);
      });
      assert.equal(code, 1);
    });
  });

  test(`fuzz: thousands of random and mutated frames, a device registering throughout (seed ${SEED})`, async () => {
    const r = rng(SEED);
    const valid = [
      SASL_HEADER,
      saslPlain(address("fuzz-dev"), token("fuzz-dev")),
      saslAnonymous(),
      AMQP_HEADER,
      open(),
      begin(),
      ...attachLinks(address("fuzz-dev")),
      transfer(0, registerMessage("fuzz-dev")),
      transfer(1, registerMessage("fuzz-dev"), true),
    ];
    let frames = 0;
    const registering = (async () => {
      let registered = 0;
      while (frames < 3_000) {
        await stillServes();
        registered++;
      }
      return registered;
    })();
    while (frames < 3_000) {
      // A connection: a valid prefix of the setup, then mutated and random frames.
      const prefix = valid.slice(0, Math.floor(r() * 8));
      const noise = Array.from({ length: 10 }, () =>
        r() < 0.8
          ? mutatePacket(r, pick(r, valid), valid)
          : Buffer.from(Array.from({ length: 1 + Math.floor(r() * 64) }, () => Math.floor(r() * 256))),
      );
      frames += noise.length;
      const socket = tls.connect({
        host: "127.0.0.1",
        port: (server.address() as AddressInfo).port,
        ca: target.ca,
        servername: "localhost",
      });
      socket.on("error", () => {});
      await once(socket, "secureConnect");
      for (const b of [...prefix, ...noise]) socket.write(b);
      await new Promise((resolve) => setTimeout(resolve, 2));
      socket.destroy();
    }
    assert.ok((await registering) > 0, "a device registered while the fuzzer ran");
    await stillServes();
  });
});
