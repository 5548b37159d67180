// Fuzzing the MQTT framing layer: random bytes and mutated valid packets, first over real TLS
// connections against one server, then (many more, faster) straight into MqttConnection over an
// in-memory stream. The process must survive, no close may come from an exception in our own
// code, and a normal client must still work afterwards. Set MQTT_FUZZ_SEED to replay a run.

import assert from "node:assert/strict";
import { Duplex } from "node:stream";
import { after, before, test } from "node:test";
import mqttPacket from "mqtt-packet";
import { MqttConnection, type MqttHandler } from "../../../src/transports/mqtt/mqtt-connection.js";
import { mutatePacket, pick, rng } from "./fuzz-support.js";
import {
  connectClient,
  connectPacket,
  delay,
  echoRoundTrip,
  echoSession,
  endClient,
  makeTlsFixture,
  RawClient,
  subscribe,
  TestServer,
  type TlsFixture,
} from "./mqtt-support.js";

let fx: TlsFixture;
before(() => {
  fx = makeTlsFixture();
});
after(() => fx.remove());

const SEED = Number(process.env.MQTT_FUZZ_SEED ?? Date.now() % 2 ** 31);

const VALID: Buffer[] = [
  connectPacket({ clientId: "fuzz", keepalive: 2 }),
  connectPacket({ clientId: "fuzz-auth", username: "hub/fuzz/?api-version=2021-04-12", password: Buffer.from("sas") }),
  connectPacket({
    clientId: "fuzz-will",
    will: { topic: "w", payload: Buffer.from("bye"), qos: 1, retain: false },
    protocolId: "MQIsdp",
    protocolVersion: 3,
  }),
  mqttPacket.generate({
    cmd: "publish",
    topic: "devices/d/messages/events/",
    payload: "{}",
    qos: 0,
    dup: false,
    retain: false,
  }),
  mqttPacket.generate({
    cmd: "publish",
    topic: "echo/req",
    payload: "hello",
    qos: 1,
    messageId: 42,
    dup: false,
    retain: false,
  }),
  mqttPacket.generate({
    cmd: "publish",
    topic: "$iothub/twin/PATCH/properties/reported/?$rid=1",
    payload: Buffer.alloc(300, 0x7b),
    qos: 1,
    messageId: 65535,
    dup: true,
    retain: false,
  }),
  mqttPacket.generate({
    cmd: "subscribe",
    messageId: 7,
    subscriptions: [
      { topic: "$iothub/twin/res/#", qos: 0 },
      { topic: "devices/d/messages/devicebound/#", qos: 1 },
    ],
  }),
  mqttPacket.generate({ cmd: "unsubscribe", messageId: 8, unsubscriptions: ["a/b", "c/#"] }),
  mqttPacket.generate({ cmd: "puback", messageId: 9 }),
  mqttPacket.generate({ cmd: "pingreq" }),
];
const CONNECTS = VALID.slice(0, 3);

function fuzzInput(r: () => number): Buffer {
  if (r() < 0.25) {
    const length = r() < 0.9 ? 1 + Math.floor(r() * 64) : 1 + Math.floor(r() * 4096);
    return Buffer.from(Array.from({ length }, () => Math.floor(r() * 256)));
  }
  return mutatePacket(r, pick(r, VALID), VALID);
}

/** Close reasons that would mean an exception escaped from our own code paths. */
const BUG = /listener error|handler error/;

test(`fuzz over TLS: random and mutated packets (seed ${SEED})`, { timeout: 30_000 }, async (t) => {
  const r = rng(SEED);
  const srv = await TestServer.tls(fx, { maxPacketBytes: 64 * 1024, connectTimeoutMs: 1000 });
  const reasons = new Map<string, number>();
  srv.handler = (conn, connect) => {
    conn.on("close", (reason) => {
      const key = reason.replace(/: .*/, "");
      reasons.set(key, (reasons.get(key) ?? 0) + 1);
    });
    echoSession(conn, connect);
  };
  const MAX_INPUTS = 3000;
  const deadline = Date.now() + 15_000;
  let sent = 0;
  let connections = 0;
  const worker = async () => {
    while (sent < MAX_INPUTS && Date.now() < deadline) {
      const raw = await RawClient.connect(fx, srv.port);
      connections++;
      if (r() < 0.7) raw.write(CONNECTS[Math.floor(r() * CONNECTS.length)] ?? Buffer.alloc(0));
      for (let n = 0; n < 40 && !raw.closed && sent < MAX_INPUTS && Date.now() < deadline; n++) {
        raw.write(fuzzInput(r));
        sent++;
        await new Promise((resolve) => setImmediate(resolve));
        if (n % 8 === 7) await delay(1); // let the server's answer (or close) come back
      }
      raw.destroy();
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  assert.ok(sent >= 500, `only ${sent} inputs in the time budget`);

  // Every server-side connection ends (client sockets are gone), none through an internal error.
  for (let i = 0; i < 200 && srv.connections.some((c) => !c.closed); i++) await delay(10);
  const open = srv.connections.filter((c) => !c.closed).length;
  assert.equal(open, 0, `${open} connections still open`);
  for (const c of srv.connections) assert.doesNotMatch(c.closeReason ?? "", BUG);

  // And the server still serves a well-behaved client.
  srv.handler = echoSession;
  const client = await connectClient(fx, srv.port, { clientId: "after-fuzz" });
  assert.deepEqual(await subscribe(client, { "echo/res": { qos: 1 } }), [1]);
  assert.equal(await echoRoundTrip(client, "survived"), "survived");
  await endClient(client);
  await srv.stop();
  t.diagnostic(`${sent} inputs over ${connections} TLS connections; close reasons ${JSON.stringify([...reasons])}`);
});

/** A stream whose readable side the test feeds directly; everything written is dropped. */
function memoryStream(): Duplex {
  return new Duplex({
    read() {},
    write(_chunk, _encoding, callback) {
      callback();
    },
    final(callback) {
      callback();
    },
  });
}

test(`fuzz in memory: 20000 inputs straight into MqttConnection (seed ${SEED})`, async (t) => {
  const r = rng(SEED ^ 0x5bd1e995);
  const reasons = new Map<string, number>();
  const limits = { maxPacketBytes: 16 * 1024, connectTimeoutMs: 60_000 };
  const handler: MqttHandler = (conn, connect) => {
    if (connect.clientId.length % 7 === 3) conn.connack(5);
    else echoSession(conn, connect);
  };
  const conns: MqttConnection[] = [];
  const deadline = Date.now() + 8_000;
  let inputs = 0;
  while (inputs < 20_000 && Date.now() < deadline) {
    const stream = memoryStream();
    const conn = new MqttConnection(
      stream,
      { remoteAddress: "fuzz", certificateChain: [], leafCertificate: undefined },
      handler,
      limits,
    );
    conns.push(conn);
    conn.on("close", (reason) => {
      const key = reason.replace(/: .*/, "");
      reasons.set(key, (reasons.get(key) ?? 0) + 1);
    });
    if (r() < 0.8) stream.push(CONNECTS[Math.floor(r() * CONNECTS.length)]);
    for (let n = 0; n < 30 && !conn.closed; n++) {
      stream.push(fuzzInput(r));
      inputs++;
      if (n % 10 === 9) await new Promise((resolve) => setImmediate(resolve));
    }
    await new Promise((resolve) => setImmediate(resolve));
    if (!conn.closed) conn.close("fuzz done");
  }
  for (const c of conns) assert.doesNotMatch(c.closeReason ?? "", BUG);
  assert.ok(inputs >= 2000, `only ${inputs} inputs`);
  t.diagnostic(`${inputs} inputs over ${conns.length} connections; close reasons ${JSON.stringify([...reasons])}`);
});
