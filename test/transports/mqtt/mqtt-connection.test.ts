// MqttConnection over an in-memory stream: the paths that are awkward to reach over a socket.

import assert from "node:assert/strict";
import { Duplex } from "node:stream";
import { test } from "node:test";
import mqttPacket, { type IPublishPacket, type Packet } from "mqtt-packet";
import { MqttConnection, type MqttHandler, type MqttLimits } from "../../../src/transports/mqtt/mqtt-connection.js";
import { connectPacket, delay } from "./mqtt-support.js";

const LIMITS: MqttLimits = { maxPacketBytes: 4096, connectTimeoutMs: 2000 };

/** A connection whose input the test pushes and whose output is parsed back into packets. */
function harness(handler: MqttHandler, limits = LIMITS) {
  const out: Packet[] = [];
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  parser.on("packet", (p: Packet) => out.push(p));
  const stream = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      parser.parse(chunk);
      callback();
    },
    final(callback) {
      callback();
    },
  });
  const conn = new MqttConnection(
    stream,
    { remoteAddress: "mem", certificateChain: [], leafCertificate: undefined },
    handler,
    limits,
  );
  const reasons: string[] = [];
  conn.on("close", (r) => reasons.push(r));
  const send = (...packets: (Packet | Buffer)[]) => {
    for (const p of packets) stream.push(Buffer.isBuffer(p) ? p : mqttPacket.generate(p));
  };
  return { conn, stream, out, reasons, send };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

test("publish assigns packet ids 1..65535 and wraps to 1; explicit ids are range-checked", async () => {
  let server: MqttConnection | undefined;
  const h = harness((conn) => {
    server = conn;
    conn.connack(0);
  });
  h.send(connectPacket());
  await tick();
  assert.ok(server);
  for (let i = 1; i <= 65_535; i++) assert.equal(server.publish({ topic: "t", payload: "", qos: 1 }), i);
  assert.equal(server.publish({ topic: "t", payload: "", qos: 1 }), 1);
  assert.equal(server.publish({ topic: "t", payload: "", qos: 1, messageId: 500, dup: true }), 500);
  assert.throws(() => server?.publish({ topic: "t", payload: "", qos: 1, messageId: 0 }), RangeError);
  assert.throws(() => server?.publish({ topic: "t", payload: "", qos: 1, messageId: 65_536 }), RangeError);
  await tick();
  const last = h.out.at(-1) as IPublishPacket;
  assert.equal(last.messageId, 500);
  assert.equal(last.dup, true);
  server.close("done");
});

test("writes before connack are dropped; connack validates its code and counts once", async () => {
  let server: MqttConnection | undefined;
  const h = harness((conn) => {
    server = conn;
  });
  h.send(connectPacket({ keepalive: 0 }));
  await tick();
  assert.ok(server);
  assert.equal(server.publish({ topic: "t", payload: "x", qos: 0 }), -1);
  server.suback(1, [0]);
  assert.throws(() => server?.connack(256), RangeError);
  server.connack(0, true);
  server.connack(5);
  await tick();
  assert.deepEqual(
    h.out.map((p) => p.cmd),
    ["connack"],
  );
  assert.equal(h.out[0]?.cmd === "connack" && h.out[0].sessionPresent, true);
  assert.equal(server.closed, false);
  server.close("done");
  assert.deepEqual(h.reasons, ["done"]);
});

test("sessionPresent is never set on a refusal", async () => {
  const h = harness((conn) => conn.connack(4, true));
  h.send(connectPacket());
  await tick();
  const connack = h.out[0];
  assert.equal(connack?.cmd, "connack");
  assert.equal(connack?.cmd === "connack" && connack.sessionPresent, false);
  assert.deepEqual(h.reasons, ["connection refused (return code 4)"]);
});

test("a throwing connect handler or packet listener closes only that connection", async () => {
  const a = harness(() => {
    throw new Error("boom");
  });
  a.send(connectPacket());
  await tick();
  assert.deepEqual(a.reasons, ["connect handler error: boom"]);

  const b = harness((conn) => {
    conn.on("publish", () => {
      throw new Error("listener boom");
    });
    conn.connack(0);
  });
  b.send(connectPacket());
  await tick();
  b.send({ cmd: "publish", topic: "t", payload: "x", qos: 0, dup: false, retain: false });
  await tick();
  assert.deepEqual(b.reasons, ["listener error: listener boom"]);
});

test("stream errors close the connection without throwing; close fires once", async () => {
  const h = harness((conn) => conn.connack(0));
  h.send(connectPacket());
  await tick();
  h.stream.destroy(new Error("ECONNRESET-ish"));
  await tick();
  assert.deepEqual(h.reasons, ["stream error: ECONNRESET-ish"]);
  assert.equal(h.conn.closed, true);
});

test("unsolicited server-side packets from the client close the connection", async () => {
  for (const p of [
    { cmd: "connack", returnCode: 0, sessionPresent: false },
    { cmd: "suback", messageId: 1, granted: [0] },
    { cmd: "pubrel", messageId: 1 },
  ] as Packet[]) {
    const h = harness((conn) => conn.connack(0));
    h.send(connectPacket());
    await tick();
    h.send(p);
    await tick();
    assert.deepEqual(h.reasons, [`unexpected ${p.cmd}`]);
  }
});

test("a declared length over the limit closes before the bytes arrive", async () => {
  const h = harness((conn) => conn.connack(0));
  h.send(connectPacket());
  await tick();
  // PUBLISH header announcing 1 MB, followed by only a few bytes.
  h.send(Buffer.from([0x30, 0x80, 0x80, 0x40, 0x00, 0x01, 0x74]));
  await tick();
  assert.deepEqual(h.reasons, ["packet too large"]);
});

test("keepalive 0 means no keep-alive deadline", async () => {
  const h = harness((conn) => conn.connack(0), { maxPacketBytes: 4096, connectTimeoutMs: 50 });
  h.send(connectPacket({ keepalive: 0 }));
  await delay(120);
  assert.equal(h.conn.closed, false);
  assert.equal(h.conn.keepalive, 0);
  h.conn.close("done");
});

test("connack(refusal) followed by close(reason) in the same tick closes once, with that reason", async () => {
  const h = harness((conn) => {
    conn.connack(5);
    conn.close("bad SAS token");
  });
  h.send(connectPacket());
  await tick();
  assert.equal(h.out[0]?.cmd === "connack" && h.out[0].returnCode, 5);
  assert.deepEqual(h.reasons, ["bad SAS token"]);
});

test("at most 100 packets may be pipelined behind CONNECT before the handler answers", async () => {
  const h = harness(() => {});
  h.send(
    Buffer.concat([connectPacket(), ...Array.from({ length: 101 }, () => mqttPacket.generate({ cmd: "pingreq" }))]),
  );
  await tick();
  assert.deepEqual(h.reasons, ["too many packets before connack"]);
});
