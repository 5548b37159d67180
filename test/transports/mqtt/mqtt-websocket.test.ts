import assert from "node:assert/strict";
import { once } from "node:events";
import type { IncomingMessage } from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import mqttPacket, { type IPublishPacket, type Packet } from "mqtt-packet";
import { WebSocket } from "ws";
import { createMqttWebSocketHandler, hostWithoutPort } from "../../../src/transports/mqtt/mqtt-websocket.js";
import { isIotHubWebSocketPath } from "../../../src/transports/websocket-upgrades.js";
import {
  closeReason,
  connectClient,
  connectPacket,
  echoRoundTrip,
  echoSession,
  endClient,
  makeTlsFixture,
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

test("path and host helpers", () => {
  assert.equal(isIotHubWebSocketPath("/$iothub/websocket"), true);
  assert.equal(isIotHubWebSocketPath("/$IoTHub/WebSocket?iothub-no-client-cert=true"), true);
  assert.equal(isIotHubWebSocketPath("/%24iothub/websocket"), true);
  assert.equal(isIotHubWebSocketPath("/$iothub/websocket/extra"), false);
  assert.equal(isIotHubWebSocketPath("/"), false);
  assert.equal(isIotHubWebSocketPath(undefined), false);
  assert.equal(hostWithoutPort("hub.example:443"), "hub.example");
  assert.equal(hostWithoutPort("hub.example"), "hub.example");
  assert.equal(hostWithoutPort("[::1]:8443"), "::1");
  assert.equal(hostWithoutPort(undefined), undefined);
});

/** A raw `ws` client that collects parsed MQTT packets from binary frames. */
async function rawWs(port: number, protocols: string[], path = "/$iothub/websocket") {
  const ws = new WebSocket(`wss://127.0.0.1:${port}${path}`, protocols, {
    ca: fx.server.cert,
  });
  const packets: Packet[] = [];
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  parser.on("packet", (p: Packet) => packets.push(p));
  ws.on("message", (data: Buffer) => parser.parse(data));
  ws.on("error", () => {});
  const status = await withTimeout(
    new Promise<number>((resolve) => {
      ws.once("open", () => resolve(101));
      ws.once("unexpected-response", (_req, res: IncomingMessage) => {
        resolve(res.statusCode ?? 0);
        res.resume();
      });
    }),
    5000,
    "websocket handshake",
  );
  const waitFor = async (n: number) => {
    for (let i = 0; i < 500 && packets.length < n; i++) await new Promise((r) => setTimeout(r, 10));
    return packets;
  };
  return { ws, status, packets, waitFor };
}

describe("MQTT over WebSocket", () => {
  let srv: TestServer;
  before(async () => {
    srv = await TestServer.wss(fx, { maxPacketBytes: 64 * 1024, connectTimeoutMs: 5000 });
  });
  after(() => srv.stop());

  test("mqtt.js over wss: CONNECT reaches the handler and a publish round trip works", async () => {
    srv.handler = echoSession;
    const connected = srv.nextConnection();
    const client = await connectClient(
      fx,
      srv.port,
      { clientId: "ws-dev", username: "hub/ws-dev", password: "tok" },
      true,
    );
    const conn = await connected;
    const connect = srv.connects.at(-1);
    assert.equal(connect?.clientId, "ws-dev");
    assert.equal(connect?.username, "hub/ws-dev");
    assert.equal(connect?.password?.toString(), "tok");
    assert.equal(conn.peer.serverName, "127.0.0.1");
    assert.equal(conn.peer.remoteAddress, "127.0.0.1");
    assert.deepEqual(await subscribe(client, { "echo/res": { qos: 1 } }), [1]);
    assert.equal(await echoRoundTrip(client, "over websocket"), "over websocket");
    await endClient(client);
    await closeReason(conn);
  });

  test("packets split across frames and several packets in one frame", async () => {
    srv.handler = echoSession;
    const { ws, status, waitFor } = await rawWs(srv.port, ["mqtt"]);
    assert.equal(status, 101);
    assert.equal(ws.protocol, "mqtt");
    const connect = connectPacket({ clientId: "framed" });
    ws.send(connect.subarray(0, 5));
    ws.send(connect.subarray(5));
    ws.send(
      Buffer.concat([
        mqttPacket.generate({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "echo/res", qos: 1 }] }),
        mqttPacket.generate({
          cmd: "publish",
          topic: "echo/req",
          payload: "hi",
          qos: 1,
          messageId: 2,
          dup: false,
          retain: false,
        }),
      ]),
    );
    const packets = await waitFor(4);
    assert.deepEqual(
      packets.map((p) => p.cmd),
      ["connack", "suback", "puback", "publish"],
    );
    assert.equal((packets[3] as IPublishPacket).payload.toString(), "hi");
    ws.terminate();
  });

  test("client certificate over wss shows up in peer.certificateChain", async () => {
    srv.handler = echoSession;
    const connected = srv.nextConnection();
    const ws = new WebSocket(`wss://127.0.0.1:${srv.port}/$iothub/websocket`, ["mqtt"], {
      ca: fx.server.cert,
      cert: fx.device.cert,
      key: fx.device.key,
      headers: { host: "hub.localhost:443" },
    });
    ws.on("error", () => {});
    await once(ws, "open");
    ws.send(connectPacket({ clientId: "device-self" }));
    const conn = await withTimeout(connected, 5000, "connection");
    assert.ok(conn.peer.leafCertificate?.equals(fx.device.der));
    assert.equal(conn.peer.certificateChain.length, 1);
    assert.ok(conn.peer.certificateChain[0]?.equals(fx.device.der));
    assert.equal(conn.peer.serverName, "hub.localhost");
    ws.terminate();
    await closeReason(conn);
  });

  test("other paths get 404; our path without an MQTT subprotocol gets 400", async () => {
    const other = await rawWs(srv.port, ["mqtt"], "/somewhere/else");
    assert.equal(other.status, 404);
    const amqp = await rawWs(srv.port, ["AMQPWSB10"]);
    assert.equal(amqp.status, 400);
    other.ws.terminate();
    amqp.ws.terminate();
  });

  test("an oversized frame closes only that connection", async () => {
    srv.handler = echoSession;
    const good = await connectClient(fx, srv.port, { clientId: "good" }, true);
    assert.deepEqual(await subscribe(good, { "echo/res": { qos: 1 } }), [1]);
    const connected = srv.nextConnection();
    const { ws } = await rawWs(srv.port, ["mqtt"]);
    ws.send(connectPacket({ clientId: "big" }));
    const conn = await withTimeout(connected, 5000, "connection");
    const closed = new Promise((r) => ws.once("close", r));
    ws.send(
      mqttPacket.generate({
        cmd: "publish",
        topic: "t",
        payload: Buffer.alloc(100 * 1024),
        qos: 0,
        dup: false,
        retain: false,
      }),
    );
    assert.match(await closeReason(conn), /Max payload|packet too large/);
    await withTimeout(closed, 5000, "ws close");
    assert.equal(await echoRoundTrip(good, "fine"), "fine");
    await endClient(good);
  });
});

test("handleUpgrade composes with another upgrade handler on the same server", async () => {
  const server = https.createServer({ key: fx.server.key, cert: fx.server.cert });
  const mqttWs = createMqttWebSocketHandler(echoSession, { maxPacketBytes: 64 * 1024, connectTimeoutMs: 5000 });
  const seenByOther: string[] = [];
  server.on("upgrade", (req, socket, head) => {
    if (mqttWs.handleUpgrade(req, socket, head)) return;
    seenByOther.push(`${req.url} ${req.headers["sec-websocket-protocol"]}`);
    socket.end("HTTP/1.1 418 I'm a teapot\r\nContent-Length: 0\r\n\r\n");
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as AddressInfo).port;
  try {
    const amqp = await rawWs(port, ["AMQPWSB10"]);
    assert.equal(amqp.status, 418);
    const mq = await rawWs(port, ["mqtt"]);
    assert.equal(mq.status, 101);
    mq.ws.send(connectPacket());
    assert.equal((await mq.waitFor(1))[0]?.cmd, "connack");
    assert.deepEqual(seenByOther, ["/$iothub/websocket AMQPWSB10"]);
    amqp.ws.terminate();
    mq.ws.terminate();
  } finally {
    mqttWs.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});
