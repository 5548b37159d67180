import assert from "node:assert/strict";
import net from "node:net";
import { after, before, describe, test } from "node:test";
import mqttPacket, { type IConnackPacket, type IPublishPacket } from "mqtt-packet";
import type { MqttConnection } from "../../../src/transports/mqtt/mqtt-connection.js";
import {
  closeReason,
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
  withTimeout,
} from "./mqtt-support.js";

let fx: TlsFixture;
before(() => {
  fx = makeTlsFixture();
});
after(() => fx.remove());

describe("MQTT over TLS: handshake and session traffic", () => {
  let srv: TestServer;
  before(async () => {
    srv = await TestServer.tls(fx, { maxPacketBytes: 64 * 1024, connectTimeoutMs: 5000 });
  });
  after(() => srv.stop());

  test("a valid CONNECT reaches the handler; accept lets the client connect", async () => {
    srv.handler = echoSession;
    const connected = srv.nextConnection();
    const client = await connectClient(fx, srv.port, {
      clientId: "dev-a",
      username: "hub/dev-a/?api-version=1",
      password: "sas-token",
    });
    const conn = await connected;
    const connect = srv.connects.at(-1);
    assert.equal(connect?.clientId, "dev-a");
    assert.equal(connect?.username, "hub/dev-a/?api-version=1");
    assert.equal(connect?.password?.toString(), "sas-token");
    assert.equal(connect?.protocolVersion, 4);
    assert.equal(conn.clientId, "dev-a");
    assert.equal(conn.keepalive, 60);
    assert.equal(conn.peer.remoteAddress, "127.0.0.1");
    assert.equal(conn.peer.serverName, "localhost");
    assert.deepEqual(conn.peer.certificateChain, []);
    assert.equal(conn.peer.leafCertificate, undefined);
    assert.equal(client.connected, true);
    await endClient(client);
    assert.match(await closeReason(conn), /client disconnected|peer ended|closed/);
  });

  test("handler refusing with 5 gives the client 'Not authorized' and closes", async () => {
    srv.handler = (conn) => conn.connack(5);
    const connected = srv.nextConnection();
    await assert.rejects(connectClient(fx, srv.port, { clientId: "bad" }), /Not authorized/);
    const conn = await connected;
    assert.equal(await closeReason(conn), "connection refused (return code 5)");
    srv.handler = echoSession;
  });

  test("PINGREQ is answered with PINGRESP and not surfaced", async () => {
    srv.handler = echoSession;
    const raw = await RawClient.connect(fx, srv.port);
    raw.write(connectPacket({ keepalive: 30 }));
    assert.equal((await raw.next())?.cmd, "connack");
    raw.write(mqttPacket.generate({ cmd: "pingreq" }));
    raw.write(mqttPacket.generate({ cmd: "pingreq" }));
    assert.equal((await raw.next())?.cmd, "pingresp");
    assert.equal((await raw.next())?.cmd, "pingresp");
    raw.destroy();
  });

  test("QoS 1 publish is surfaced; the handler's PUBACK reaches the client; echo round trip", async () => {
    const seen: IPublishPacket[] = [];
    srv.handler = (conn, connect) => {
      conn.on("publish", (p) => seen.push(p));
      echoSession(conn, connect);
    };
    const client = await connectClient(fx, srv.port);
    await new Promise<void>((resolve, reject) =>
      client.publish("devices/dev-1/messages/events/", '{"t":21}', { qos: 1 }, (e) => (e ? reject(e) : resolve())),
    );
    assert.equal(seen.length, 1);
    assert.equal(seen[0]?.topic, "devices/dev-1/messages/events/");
    assert.equal(seen[0]?.qos, 1);
    assert.equal(seen[0]?.payload.toString(), '{"t":21}');
    assert.deepEqual(await subscribe(client, { "echo/res": { qos: 1 } }), [1]);
    assert.equal(await echoRoundTrip(client, "ping-1"), "ping-1");
    await endClient(client);
  });

  test("SUBSCRIBE gets SUBACK with the granted codes (0x80 refused); UNSUBSCRIBE gets UNSUBACK", async () => {
    srv.handler = echoSession;
    const client = await connectClient(fx, srv.port);
    const granted = await subscribe(client, {
      "$iothub/twin/res/#": { qos: 0 },
      "devices/dev-1/messages/devicebound/#": { qos: 1 },
      "forbidden/x": { qos: 1 },
      "qos2/topic": { qos: 2 },
    });
    assert.deepEqual(granted, [0, 1, 128, 1]);
    await new Promise<void>((resolve, reject) =>
      client.unsubscribe("$iothub/twin/res/#", (e?: Error) => (e ? reject(e) : resolve())),
    );
    await endClient(client);
  });

  test("server QoS 1 publish gets sequential ids and the client's PUBACK is surfaced", async () => {
    const acked: number[] = [];
    let server: MqttConnection | undefined;
    srv.handler = (conn, connect) => {
      server = conn;
      conn.on("puback", (p) => acked.push(p.messageId ?? -1));
      echoSession(conn, connect);
    };
    const client = await connectClient(fx, srv.port);
    const received: string[] = [];
    const two = new Promise<void>((resolve) =>
      client.on("message", (_t, m) => {
        received.push(m.toString());
        if (received.length === 2) resolve();
      }),
    );
    assert.equal(server?.publish({ topic: "c2d/a", payload: "one", qos: 1 }), 1);
    assert.equal(server?.publish({ topic: "c2d/b", payload: Buffer.from("two"), qos: 1 }), 2);
    assert.equal(server?.publish({ topic: "c2d/c", payload: "zero", qos: 0 }), 0);
    await withTimeout(two, 5000, "messages");
    for (let i = 0; i < 50 && acked.length < 2; i++) await delay(10);
    assert.deepEqual(acked, [1, 2]);
    await endClient(client);
  });

  test("packets sent right behind CONNECT wait for an asynchronous accept, then arrive in order", async () => {
    const events: string[] = [];
    srv.handler = (conn) => {
      events.push("connect");
      setTimeout(() => {
        conn.on("publish", (p) => {
          events.push(`publish ${p.topic}`);
          if (p.messageId) conn.puback(p.messageId);
        });
        conn.on("subscribe", (p) => {
          events.push("subscribe");
          conn.suback(p.messageId ?? 0, [1]);
        });
        events.push("accept");
        conn.connack(0);
      }, 50);
    };
    const raw = await RawClient.connect(fx, srv.port);
    raw.write(
      Buffer.concat([
        connectPacket(),
        mqttPacket.generate({ cmd: "subscribe", messageId: 5, subscriptions: [{ topic: "a/#", qos: 1 }] }),
        mqttPacket.generate({
          cmd: "publish",
          topic: "t/1",
          payload: "x",
          qos: 1,
          messageId: 6,
          dup: false,
          retain: false,
        }),
        mqttPacket.generate({ cmd: "pingreq" }),
      ]),
    );
    const connack = (await raw.next()) as IConnackPacket;
    assert.equal(connack.cmd, "connack");
    assert.equal(connack.returnCode, 0);
    assert.equal((await raw.next())?.cmd, "suback");
    assert.equal((await raw.next())?.cmd, "puback");
    assert.equal((await raw.next())?.cmd, "pingresp");
    assert.deepEqual(events, ["connect", "accept", "subscribe", "publish t/1"]);
    raw.destroy();
  });

  test("DISCONNECT closes cleanly and 'close' fires exactly once; writes after close are ignored", async () => {
    srv.handler = echoSession;
    const connected = srv.nextConnection();
    const raw = await RawClient.connect(fx, srv.port);
    raw.write(connectPacket());
    assert.equal((await raw.next())?.cmd, "connack");
    const conn = await connected;
    let closes = 0;
    conn.on("close", () => closes++);
    raw.write(mqttPacket.generate({ cmd: "disconnect" }));
    assert.equal(await closeReason(conn), "client disconnected");
    await raw.closedAfter();
    conn.close("again");
    assert.equal(conn.publish({ topic: "x", payload: "y", qos: 1 }), -1);
    conn.puback(1);
    conn.suback(1, [0]);
    conn.unsuback(1);
    conn.connack(0);
    await delay(20);
    assert.equal(closes, 1);
    assert.equal(conn.closed, true);
  });

  test("a second CONNECT closes the connection", async () => {
    srv.handler = echoSession;
    const connected = srv.nextConnection();
    const raw = await RawClient.connect(fx, srv.port);
    raw.write(connectPacket());
    assert.equal((await raw.next())?.cmd, "connack");
    raw.write(connectPacket());
    assert.equal(await closeReason(await connected), "second connect");
    await raw.closedAfter();
  });

  test("CONNECT with protocol level 5 or 6 gets CONNACK 1, then close; handler not called", async () => {
    let called = 0;
    srv.handler = () => called++;
    for (const level of [5, 6]) {
      const raw = await RawClient.connect(fx, srv.port);
      const bytes = connectPacket({ protocolVersion: 4 });
      bytes[8] = level; // fixed header (2) + "MQTT" (6) -> protocol level byte
      raw.write(bytes);
      const connack = (await raw.next()) as IConnackPacket;
      assert.equal(connack.cmd, "connack", `level ${level}`);
      assert.equal(connack.returnCode, 1, `level ${level}`);
      await raw.closedAfter();
    }
    assert.equal(called, 0);
    srv.handler = echoSession;
  });

  test("a first packet other than CONNECT closes the connection", async () => {
    const raw = await RawClient.connect(fx, srv.port);
    raw.write(mqttPacket.generate({ cmd: "pingreq" }));
    assert.equal(await raw.next(), null);
    await raw.closedAfter();
  });

  test("garbage bytes close the connection", async () => {
    const raw = await RawClient.connect(fx, srv.port);
    raw.write(Buffer.from("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    await raw.closedAfter();
    const raw2 = await RawClient.connect(fx, srv.port);
    raw2.write(connectPacket());
    assert.equal((await raw2.next())?.cmd, "connack");
    raw2.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x01]));
    await raw2.closedAfter();
  });

  test("QoS 2 publish, bad packet ids, wildcard and U+0000 topics close the connection", async () => {
    srv.handler = echoSession;
    const bad = [
      mqttPacket.generate({
        cmd: "publish",
        topic: "a",
        payload: "x",
        qos: 2,
        messageId: 3,
        dup: false,
        retain: false,
      }),
      mqttPacket.generate({ cmd: "publish", topic: "a/#", payload: "x", qos: 0, dup: false, retain: false }),
      // The fuzz seed 110567585 found this one: a raw NUL in $rid came back in the answer topic.
      mqttPacket.generate({
        cmd: "publish",
        topic: "$dps/registrations/PUT/iotdps-register/?$rid=1\u00002",
        payload: "{}",
        qos: 0,
        dup: false,
        retain: false,
      }),
      Buffer.from([0x32, 0x03, 0x00, 0x01, 0x61]), // QoS 1 publish whose packet id is missing
      Buffer.from([0x82, 0x06, 0x00, 0x00, 0x00, 0x01, 0x61, 0x00]), // SUBSCRIBE with packet id 0
      Buffer.from([0x40, 0x00]), // PUBACK without packet id
    ];
    for (const bytes of bad) {
      const connected = srv.nextConnection();
      const raw = await RawClient.connect(fx, srv.port);
      raw.write(connectPacket());
      assert.equal((await raw.next())?.cmd, "connack");
      raw.write(bytes);
      raw.write(mqttPacket.generate({ cmd: "pingreq" }));
      assert.equal(await raw.next(), null, bytes.toString("hex"));
      assert.match(await closeReason(await connected), /malformed|QoS 2|topic/);
    }
  });

  test("an oversized publish closes that connection; another client keeps working", async () => {
    srv.handler = echoSession;
    const good = await connectClient(fx, srv.port, { clientId: "good" });
    assert.deepEqual(await subscribe(good, { "echo/res": { qos: 1 } }), [1]);
    const connected = srv.nextConnection();
    const big = await connectClient(fx, srv.port, { clientId: "big" });
    const conn = await connected;
    const bigClosed = new Promise<void>((resolve) => big.once("close", () => resolve()));
    big.publish("devices/big/messages/events/", Buffer.alloc(100 * 1024, 0x61), { qos: 0 });
    assert.equal(await closeReason(conn), "packet too large");
    await withTimeout(bigClosed, 5000, "big client close");
    assert.equal(await echoRoundTrip(good, "still here"), "still here");
    await endClient(big);
    await endClient(good);
  });

  test("a packet just under the limit is accepted", async () => {
    srv.handler = echoSession;
    const client = await connectClient(fx, srv.port);
    assert.deepEqual(await subscribe(client, { "echo/res": { qos: 1 } }), [1]);
    const payload = "b".repeat(64 * 1024 - 64);
    assert.equal(await echoRoundTrip(client, payload), payload);
    await endClient(client);
  });

  test("client certificates show up in peer.certificateChain, the first alone in peer.leafCertificate", async () => {
    srv.handler = echoSession;
    let connected = srv.nextConnection();
    const self = await connectClient(fx, srv.port, {
      clientId: "device-self",
      cert: fx.device.cert,
      key: fx.device.key,
    });
    let conn = await connected;
    assert.ok(conn.peer.leafCertificate?.equals(fx.device.der));
    assert.equal(conn.peer.certificateChain.length, 1);
    assert.ok(conn.peer.certificateChain[0]?.equals(fx.device.der));
    await endClient(self);

    connected = srv.nextConnection();
    const chained = await connectClient(fx, srv.port, {
      clientId: "device-leaf",
      cert: fx.leaf.cert + fx.deviceCa.cert,
      key: fx.leaf.key,
    });
    conn = await connected;
    // Read first, the leaf comes from the abbreviated copy; then the whole chain.
    assert.ok(conn.peer.leafCertificate?.equals(fx.leaf.der));
    assert.equal(conn.peer.certificateChain.length, 2);
    assert.ok(conn.peer.certificateChain[0]?.equals(fx.leaf.der));
    assert.ok(conn.peer.certificateChain[1]?.equals(fx.deviceCa.der));
    await endClient(chained);
  });
});

describe("MQTT over TLS: deadlines", () => {
  const LIMITS = { maxPacketBytes: 64 * 1024, connectTimeoutMs: 300 };
  let srv: TestServer;
  before(async () => {
    srv = await TestServer.tls(fx, LIMITS);
  });
  after(() => srv.stop());

  test("keep-alive: a silent client with keepalive 1 s is closed after ~1.5 s", async () => {
    srv.handler = echoSession;
    const connected = srv.nextConnection();
    const raw = await RawClient.connect(fx, srv.port);
    raw.write(connectPacket({ keepalive: 1 }));
    assert.equal((await raw.next())?.cmd, "connack");
    const conn = await connected;
    const started = Date.now();
    // Traffic keeps it alive...
    for (let i = 0; i < 3; i++) {
      await delay(500);
      raw.write(mqttPacket.generate({ cmd: "pingreq" }));
      assert.equal((await raw.next())?.cmd, "pingresp");
    }
    assert.equal(conn.closed, false);
    // ...silence does not.
    const silentFrom = Date.now();
    assert.equal(await closeReason(conn, 4000), "keep-alive timeout");
    const silence = Date.now() - silentFrom;
    assert.ok(silence >= 1300 && silence < 3000, `closed after ${silence} ms of silence`);
    assert.ok(Date.now() - started > 2500);
    await raw.closedAfter();
  });

  test("a client that connects TLS and never sends CONNECT is closed after connectTimeoutMs", async () => {
    const raw = await RawClient.connect(fx, srv.port);
    const after = await raw.closedAfter(3000);
    assert.ok(after >= 250 && after < 2000, `closed after ${after} ms`);
  });

  test("half a CONNECT then a stall is closed at the deadline counted from accept", async () => {
    const raw = await RawClient.connect(fx, srv.port);
    await delay(200);
    const bytes = connectPacket({ clientId: "slowpoke" });
    raw.write(bytes.subarray(0, 8));
    const after = await raw.closedAfter(3000);
    assert.ok(after >= 250 && after < 450 + 300, `closed after ${after} ms`);
  });

  test("a CONNECT trickled one byte at a time still has to finish by the deadline", async () => {
    const raw = await RawClient.connect(fx, srv.port);
    const bytes = connectPacket({ clientId: "trickle", username: "u".repeat(40) });
    let i = 0;
    const timer = setInterval(() => raw.write(bytes.subarray(i, ++i)), 25);
    try {
      const after = await raw.closedAfter(3000);
      assert.ok(after < 1000 && i < bytes.length, `closed after ${after} ms, ${i}/${bytes.length} bytes`);
    } finally {
      clearInterval(timer);
    }
  });

  test("a handler that never answers is cut off at the deadline", async () => {
    srv.handler = () => {};
    const connected = srv.nextConnection();
    const raw = await RawClient.connect(fx, srv.port);
    raw.write(connectPacket());
    const conn = await connected;
    assert.equal(await closeReason(conn, 3000), "connect handler did not answer in time");
    assert.equal(await raw.next(), null);
    srv.handler = echoSession;
  });

  test("stalled or plain-text TLS handshakes do not affect other clients", async () => {
    const plain = net.connect(srv.port, "127.0.0.1");
    plain.on("error", () => {});
    const silent = net.connect(srv.port, "127.0.0.1");
    silent.on("error", () => {});
    await Promise.all([new Promise((r) => plain.once("connect", r)), new Promise((r) => silent.once("connect", r))]);
    plain.write("this is not a TLS ClientHello\r\n\r\n");
    const client = await connectClient(fx, srv.port, { clientId: "neighbour" });
    assert.deepEqual(await subscribe(client, { "echo/res": { qos: 1 } }), [1]);
    assert.equal(await echoRoundTrip(client, "ok"), "ok");
    await withTimeout(new Promise((r) => silent.once("close", r)), 3000, "handshake timeout");
    await withTimeout(new Promise((r) => (plain.destroyed ? r(null) : plain.once("close", r))), 3000, "bad handshake");
    assert.equal(await echoRoundTrip(client, "ok2"), "ok2");
    await endClient(client);
  });
});
