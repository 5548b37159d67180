// The real azure-iot-device client (MQTT, MQTT over WebSockets, HTTP) against a built-in hub of
// `provisio serve` (iothub-api.md §6-7, §10): telemetry, twin GET/reported/desired, refusals.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { after, before, describe, test } from "node:test";
import deviceSdk from "azure-iot-device";
import deviceHttp from "azure-iot-device-http";
import deviceMqtt from "azure-iot-device-mqtt";
import type { Registry } from "azure-iothub";
import mqtt from "mqtt";
import { createSasToken } from "../../src/attestation/sas-token.js";
import { selfSignedDeviceCert } from "../support/certs.js";
import {
  type DeviceClient,
  hubAgent,
  hubOf,
  registryClient,
  selfSignedHubDevice,
  x509DeviceClient,
} from "../support/hub-clients.js";
import { call } from "../support/management.js";
import { BIN, type ProvisioProcess, startProvisio } from "../support/provisio-process.js";

// The device SDK packages are CommonJS without named-export hints.
const { Client, Message } = deviceSdk;
const { Mqtt, MqttWs } = deviceMqtt;
const { Http } = deviceHttp;

interface KeptMessage {
  deviceId: string;
  transport: string;
  systemProperties: Record<string, string>;
  properties: Record<string, string>;
  payload: unknown;
}

describe("azure-iot-device against the built-in hub", () => {
  let p: ProvisioProcess;
  let registry: Registry;
  const open: DeviceClient[] = [];
  let hostName: string;

  /** A device client over MQTT/TLS: the port rides in GatewayHostName (iothub-api.md §10.2). */
  const mqttClient = (deviceId: string, key: string, host = hostName): DeviceClient =>
    track(
      Client.fromConnectionString(
        `HostName=${host};DeviceId=${deviceId};SharedAccessKey=${key};GatewayHostName=127.0.0.1:${p.info.ports.mqtt}`,
        Mqtt,
      ),
    );
  /** Every client is closed at the end, refused ones too: they keep renewal and retry timers. */
  const track = (client: DeviceClient): DeviceClient => {
    open.push(client);
    return client;
  };

  const keyOf = async (deviceId: string): Promise<string> => {
    const d = (await registry.create({ deviceId })).responseBody;
    return d.authentication?.symmetricKey?.primaryKey ?? "";
  };

  const kept = async (deviceId: string): Promise<KeptMessage[]> => {
    const r = await call(p, "GET", `/_provisio/messages?deviceId=${encodeURIComponent(deviceId)}`, {
      connectionString: hubOf(p).connectionString,
    });
    assert.equal(r.status, 200, r.text);
    return r.json() as KeptMessage[];
  };

  const connect = async (client: DeviceClient): Promise<DeviceClient> => {
    await client.setOptions({ ca: p.ca.toString() });
    await client.open();
    if (!open.includes(client)) open.push(client);
    return client;
  };

  before(async () => {
    p = await startProvisio();
    registry = registryClient(p);
    hostName = hubOf(p).hostName;
  });
  after(async () => {
    for (const c of open) await c.close().catch(() => undefined);
    await p.dispose();
  });

  test("MQTT: a SAS device connects and its telemetry, with properties, is kept", async () => {
    const client = await connect(mqttClient("mqtt-dev", await keyOf("mqtt-dev")));
    const msg = new Message(JSON.stringify({ temperature: 21.5 }));
    msg.messageId = "msg-1";
    msg.correlationId = "corr-1";
    msg.contentType = "application/json";
    msg.contentEncoding = "utf-8";
    msg.properties.add("alert", "high temp");
    await client.sendEvent(msg);
    await client.sendEvent(new Message("plain text"));
    const messages = await kept("mqtt-dev");
    assert.equal(messages.length, 2);
    assert.deepEqual(messages[0]?.payload, { temperature: 21.5 });
    assert.deepEqual(messages[0]?.properties, { alert: "high temp" });
    assert.equal(messages[0]?.systemProperties.messageId, "msg-1");
    assert.equal(messages[0]?.systemProperties.correlationId, "corr-1");
    assert.equal(messages[0]?.systemProperties.contentType, "application/json");
    assert.equal(messages[0]?.transport, "mqtt");
    assert.equal(messages[1]?.payload, "plain text");
    assert.equal((await registry.get("mqtt-dev")).responseBody.connectionState, "Connected");
  });

  test("MQTT: twin GET, reported PATCH, and desired changes pushed to the device", async () => {
    const client = await connect(mqttClient("twin-dev", await keyOf("twin-dev")));
    await registry.updateTwin("twin-dev", { properties: { desired: { interval: 30 } } }, "*");
    const twin = await client.getTwin();
    assert.equal(twin.properties.desired.interval, 30);
    assert.equal(twin.properties.desired.$version, 2);
    // IoT Hub gives devices no $metadata (issue 15.4); the service view keeps it.
    assert.equal("$metadata" in twin.properties.desired, false);
    assert.equal("$metadata" in (await registry.getTwin("twin-dev")).responseBody.properties.desired, true);

    await new Promise<void>((resolve, reject) =>
      twin.properties.reported.update({ firmware: "1.0.0", battery: 80 }, (err?: Error) =>
        err ? reject(err) : resolve(),
      ),
    );
    const serviceView = (await registry.getTwin("twin-dev")).responseBody;
    assert.equal(serviceView.properties.reported.firmware, "1.0.0");
    assert.equal(serviceView.properties.reported.$version, 2);

    const pushed = new Promise<Record<string, unknown>>((resolve) => {
      twin.on("properties.desired", (delta: Record<string, unknown>) => {
        if (delta.interval === 99) resolve(delta);
      });
    });
    await registry.updateTwin("twin-dev", { properties: { desired: { interval: 99 } } }, "*");
    const delta = await pushed;
    assert.equal(delta.$version, 3);
  });

  test("MQTT twin GET is exactly desired and reported with $version; a bad reported PATCH gets an error body with a trackingId", async () => {
    const key = await keyOf("raw-twin-dev");
    await registry.updateTwin("raw-twin-dev", { properties: { desired: { mode: "eco", cfg: { a: 1 } } } }, "*");
    const sr = encodeURIComponent(`${hostName}/devices/raw-twin-dev`);
    const client = mqtt.connect(`mqtts://127.0.0.1:${p.info.ports.mqtt}`, {
      ca: p.ca,
      clientId: "raw-twin-dev",
      username: `${hostName}/raw-twin-dev/?api-version=2021-04-12`,
      password: createSasToken(key, sr, Math.floor(Date.now() / 1000) + 600),
      protocolVersion: 4,
      reconnectPeriod: 0,
    });
    try {
      await once(client, "connect");
      const replies = new Map<string, { topic: string; body: string }>();
      client.on("message", (topic, payload) => {
        const rid = new URLSearchParams(topic.split("?")[1] ?? "").get("$rid") ?? "";
        replies.set(rid, { topic, body: payload.toString() });
      });
      await new Promise((resolve) => client.subscribe("$iothub/twin/res/#", { qos: 0 }, resolve));
      const ask = async (topic: string, payload: string, rid: string) => {
        client.publish(topic, payload, { qos: 0 });
        for (let i = 0; i < 100 && !replies.has(rid); i++) await new Promise((r) => setTimeout(r, 20));
        const reply = replies.get(rid);
        assert.ok(reply, `a reply to ${topic}`);
        return reply;
      };
      const got = await ask("$iothub/twin/GET/?$rid=1", " ", "1");
      assert.equal(got.topic, "$iothub/twin/res/200/?$rid=1");
      assert.deepEqual(JSON.parse(got.body), {
        desired: { mode: "eco", cfg: { a: 1 }, $version: 2 },
        reported: { $version: 1 },
      });
      const bad = await ask("$iothub/twin/PATCH/properties/reported/?$rid=2", "{not json", "2");
      assert.match(bad.topic, /^\$iothub\/twin\/res\/400\/\?\$rid=2$/);
      const body = JSON.parse(bad.body) as { errorCode: number; trackingId: string; message: string };
      assert.equal(body.errorCode, 400001);
      assert.match(body.trackingId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    } finally {
      client.end(true);
    }
  });

  test("MQTT over WebSockets on the HTTPS port", async () => {
    const key = await keyOf("ws-dev");
    // MqttWs hard-codes port 443 (device-api.md §8): point its URI at provisio's HTTPS port.
    const port = p.info.ports.https;
    class LocalMqttWs extends MqttWs {
      protected override _getBaseTransportConfig(
        credentials: Parameters<InstanceType<typeof MqttWs>["_getBaseTransportConfig"]>[0],
      ) {
        const config = super._getBaseTransportConfig(credentials);
        config.uri = `wss://127.0.0.1:${port}/$iothub/websocket`;
        return config;
      }
    }
    const client = await connect(
      Client.fromConnectionString(`HostName=${hostName};DeviceId=ws-dev;SharedAccessKey=${key}`, LocalMqttWs),
    );
    await client.sendEvent(new Message(JSON.stringify({ over: "websocket" })));
    const messages = await kept("ws-dev");
    assert.deepEqual(
      messages.map((m) => [m.transport, m.payload]),
      [["mqtt-ws", { over: "websocket" }]],
    );
  });

  test("HTTP: single messages and batches are accepted with 204 and kept", async () => {
    const key = await keyOf("http-dev");
    const client = track(
      Client.fromConnectionString(`HostName=${hostName};DeviceId=http-dev;SharedAccessKey=${key}`, Http),
    );
    // Http.setOptions calls back only when a receive policy is given (iothub-api.md §10.4).
    await client.setOptions({ http: { agent: hubAgent(p), receivePolicy: { interval: 3600 } } });
    const msg = new Message(JSON.stringify({ temperature: 22.1 }));
    msg.messageId = "http-1";
    msg.properties.add("alert", "high temp");
    await client.sendEvent(msg);
    await client.sendEventBatch([new Message("a"), new Message("b")]);
    const messages = await kept("http-dev");
    assert.deepEqual(
      messages.map((m) => m.payload),
      [{ temperature: 22.1 }, "a", "b"],
    );
    assert.equal(messages[0]?.systemProperties.messageId, "http-1");
    assert.deepEqual(messages[0]?.properties, { alert: "high temp" });

    const bad = track(
      Client.fromConnectionString(
        `HostName=${hostName};DeviceId=http-dev;SharedAccessKey=${Buffer.alloc(32, 5).toString("base64")}`,
        Http,
      ),
    );
    await bad.setOptions({ http: { agent: hubAgent(p), receivePolicy: { interval: 3600 } } });
    await assert.rejects(bad.sendEvent(new Message("x")), (e: Error) => e.name === "UnauthorizedError");
  });

  test("X.509: a self-signed device authenticates with its client certificate", async () => {
    const cert = await selfSignedHubDevice(registry, "x509-dev");
    const gatewayHostName = `127.0.0.1:${p.info.ports.mqtt}`;
    const x509Client = x509DeviceClient(
      { host: hostName, deviceId: "x509-dev", gatewayHostName, cert: cert.certPem, key: cert.keyPem },
      Mqtt,
    );
    await connect(x509Client);
    await x509Client.sendEvent(new Message("signed"));
    assert.equal((await kept("x509-dev"))[0]?.payload, "signed");

    const other = await selfSignedDeviceCert("x509-dev");
    const impostor = x509DeviceClient(
      { host: hostName, deviceId: "x509-dev", gatewayHostName, cert: other.certPem, key: other.keyPem },
      Mqtt,
    );
    track(impostor);
    await impostor.setOptions({ ca: p.ca.toString() });
    await assert.rejects(
      impostor.open(),
      (e: Error) => e.name === "UnauthorizedError",
      "a certificate the identity does not list",
    );
  });

  test("X.509 over HTTP: a self-signed device sends telemetry with its client certificate; another certificate is 401", async () => {
    const cert = await selfSignedHubDevice(registry, "x509-http-dev");
    const httpX509 = async (x509: { cert: string; key: string }): Promise<DeviceClient> => {
      const client = track(x509DeviceClient({ host: hostName, deviceId: "x509-http-dev", ...x509 }, Http));
      await client.setOptions({ http: { agent: hubAgent(p), receivePolicy: { interval: 3600 } } });
      return client;
    };
    const device = await httpX509({ cert: cert.certPem, key: cert.keyPem });
    await device.sendEvent(new Message("signed over https"));
    const messages = await kept("x509-http-dev");
    assert.equal(messages[0]?.payload, "signed over https");
    assert.equal(messages[0]?.transport, "https");

    const other = await selfSignedDeviceCert("x509-http-dev");
    const impostor = await httpX509({ cert: other.certPem, key: other.keyPem });
    await assert.rejects(impostor.sendEvent(new Message("x")), (e: Error) => e.name === "UnauthorizedError");
    assert.equal((await kept("x509-http-dev")).length, 1);
  });

  test("refusals: a bad SAS (CONNACK 5), a disabled device, an unknown hub host; others keep working", async () => {
    const key = await keyOf("refusal-dev");
    const good = await connect(mqttClient("refusal-dev", key));

    const wrong = mqttClient("refusal-dev", Buffer.alloc(32, 9).toString("base64"));
    await wrong.setOptions({ ca: p.ca.toString() });
    await assert.rejects(wrong.open(), (e: Error) => e.name === "UnauthorizedError");

    const disabledKey = await keyOf("disabled-dev");
    const d = (await registry.get("disabled-dev")).responseBody;
    await registry.update({ ...d, status: "disabled" });
    const disabled = mqttClient("disabled-dev", disabledKey);
    await disabled.setOptions({ ca: p.ca.toString() });
    await assert.rejects(disabled.open(), (e: Error) => e.name === "UnauthorizedError");

    const elsewhere = mqttClient("refusal-dev", key, "no-such-hub.localhost");
    await elsewhere.setOptions({ ca: p.ca.toString() });
    await assert.rejects(elsewhere.open(), (e: Error) => e.name === "UnauthorizedError");

    await good.sendEvent(new Message("still here"));
    assert.equal((await kept("refusal-dev")).at(-1)?.payload, "still here");
  });

  test("an oversized message closes only that device's connection", async () => {
    const small = await connect(mqttClient("small-dev", await keyOf("small-dev")));
    // A plain MQTT client, so no SDK retry policy resends the message forever.
    const key = await keyOf("big-dev");
    const sr = encodeURIComponent(`${hostName}/devices/big-dev`);
    const big = mqtt.connect(`mqtts://127.0.0.1:${p.info.ports.mqtt}`, {
      ca: p.ca,
      clientId: "big-dev",
      username: `${hostName}/big-dev/?api-version=2021-04-12`,
      password: createSasToken(key, sr, Math.floor(Date.now() / 1000) + 600),
      protocolVersion: 4,
      reconnectPeriod: 0,
    });
    await once(big, "connect");
    big.on("error", () => undefined); // the server resets the connection: that is the point
    const closed = new Promise((resolve) => big.once("close", resolve));
    big.publish("devices/big-dev/messages/events/", Buffer.alloc(300 * 1024, 0x61), { qos: 1 });
    await closed;
    big.end(true);
    await small.sendEvent(new Message("unaffected"));
    assert.deepEqual(
      (await kept("small-dev")).map((m) => m.payload),
      ["unaffected"],
    );
    assert.equal((await kept("big-dev")).length, 0);
  });

  test("provisio hub monitor-events streams telemetry as JSON lines", async () => {
    const key = await keyOf("monitored-dev");
    const monitor = spawn(
      process.execPath,
      [BIN, "hub", "monitor-events", "--data-dir", p.dataDir, "--device-id", "monitored-dev"],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    try {
      let out = "";
      monitor.stdout.on("data", (d: Buffer) => {
        out += d.toString();
      });
      const client = await connect(mqttClient("monitored-dev", key));
      // The monitor may still be connecting: send until a line shows up (bounded).
      for (let i = 0; i < 50 && !out.includes("\n"); i++) {
        await client.sendEvent(new Message(JSON.stringify({ n: i })));
        await new Promise((r) => setTimeout(r, 100));
      }
      const first = JSON.parse(out.split("\n")[0] ?? "") as KeptMessage;
      assert.equal(first.deviceId, "monitored-dev");
      assert.equal(typeof (first.payload as { n: number }).n, "number");
    } finally {
      monitor.kill("SIGTERM");
      await once(monitor, "exit");
    }
  });
});
