// Cloud-to-device messages on a built-in hub (issue "The built-in hub" point 1): the real
// azure-iothub Client sends over AMQP (CBS put-token, /messages/devicebound), the real
// azure-iot-device MQTT client receives, and the feedback receiver hears how it ended.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import deviceSdk from "azure-iot-device";
import deviceHttp from "azure-iot-device-http";
import deviceMqtt from "azure-iot-device-mqtt";
import iothub from "azure-iothub";
import { createSasToken } from "../../src/attestation/sas-token.js";
import {
  collectFeedback,
  type DeviceClient,
  hubAgent,
  hubOf,
  redirectAmqp,
  registryClient,
} from "../support/hub-clients.js";
import { call } from "../support/management.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { resolveAllTo } from "../support/service-client.js";
import { until } from "../support/until.js";

/** A device's own SAS token for the hub, as the device SDKs sign it. */
const deviceToken = (hubHost: string, deviceId: string, key: string): string =>
  createSasToken(key, encodeURIComponent(`${hubHost}/devices/${deviceId}`), Math.floor(Date.now() / 1000) + 600);

const { Client: DeviceClientCtor, Message } = deviceSdk;
const { Mqtt } = deviceMqtt;
const { Http } = deviceHttp;

function serviceClient(p: ProvisioProcess): iothub.Client {
  const hub = hubOf(p);
  const LocalAmqp = redirectAmqp(iothub.Amqp, (c) => ({
    ...c,
    uri: `amqps://${hub.hostName}:${p.info.ports.amqp}`,
    sslOptions: { ca: p.ca.toString() },
    policyOverride: { host: "127.0.0.1", servername: hub.hostName },
  }));
  return iothub.Client.fromConnectionString(hub.connectionString, LocalAmqp as never);
}

describe("cloud-to-device messages on the built-in hub", () => {
  let p: ProvisioProcess;
  let service: iothub.Client;
  const open: DeviceClient[] = [];

  before(async () => {
    p = await startProvisio();
    service = serviceClient(p);
    await service.open();
  });
  after(async () => {
    for (const c of open) await c.close().catch(() => undefined);
    await service?.close().catch(() => undefined);
    await p?.dispose();
  });

  const device = async (deviceId: string): Promise<DeviceClient> => {
    const d = (await registryClient(p).create({ deviceId })).responseBody;
    const client = DeviceClientCtor.fromConnectionString(
      `HostName=${hubOf(p).hostName};DeviceId=${deviceId};SharedAccessKey=${d.authentication?.symmetricKey?.primaryKey};GatewayHostName=127.0.0.1:${p.info.ports.mqtt}`,
      Mqtt,
    );
    open.push(client);
    await client.setOptions({ ca: p.ca.toString() });
    return client;
  };

  test("a message sent before the device connects is delivered over MQTT with its properties, and feedback says Success", async () => {
    const client = await device("c2d-dev-1");
    const feedback = await collectFeedback(service);

    const message = new Message(JSON.stringify({ command: "reprovision" }));
    message.messageId = "c2d-msg-1";
    message.ack = "full";
    message.properties.add("priority", "high");
    await service.send("c2d-dev-1", message);

    const received: { data: Buffer; messageId: string; properties: { getValue(k: string): string } }[] = [];
    client.on("message", (m: { data: Buffer; messageId: string; properties: { getValue(k: string): string } }) => {
      received.push(m);
      void client.complete(m as never);
    });
    await client.open();
    await until(async () => received.length === 1, 10_000, "the device to get its message");
    const [m] = received;
    assert.deepEqual(JSON.parse(m?.data.toString() ?? ""), { command: "reprovision" });
    assert.equal(m?.messageId, "c2d-msg-1");
    assert.equal(m?.properties.getValue("priority"), "high");
    await until(async () => feedback.length === 1, 10_000, "feedback");
    assert.deepEqual(feedback[0]?.statusCode, "Success");
    assert.equal(feedback[0]?.originalMessageId, "c2d-msg-1");
  });

  test("a device with 50 waiting messages refuses the 51st; an unknown device is DeviceNotFound", async () => {
    await device("c2d-dev-2"); // registered, never connected
    for (let i = 0; i < 50; i++) await service.send("c2d-dev-2", new Message(`m${i}`));
    await assert.rejects(service.send("c2d-dev-2", new Message("one too many")), /DeviceMaximumQueueDepthExceeded/);
    await assert.rejects(service.send("nobody-here", new Message("x")), /DeviceNotFound|not registered/);
  });

  test("over HTTPS: polled, completed, rejected with feedback, abandoned and received again; a lost lock is 412", async () => {
    const d = (await registryClient(p).create({ deviceId: "c2d-http" })).responseBody;
    const key = d.authentication?.symmetricKey?.primaryKey ?? "";
    const client = DeviceClientCtor.fromConnectionString(
      `HostName=${hubOf(p).hostName};DeviceId=c2d-http;SharedAccessKey=${key}`,
      Http,
    );
    open.push(client);
    // Http.setOptions calls back only when a receive policy is given (iothub-api.md §10.4).
    await client.setOptions({ http: { agent: hubAgent(p), receivePolicy: { interval: 1 } } });
    const feedback = await collectFeedback(service);
    const send = (id: string, body: string) => {
      const m = new Message(body);
      m.messageId = id;
      m.ack = "full";
      return service.send("c2d-http", m);
    };
    await send("h-1", "first");
    await send("h-2", "second");
    const seen: string[] = [];
    client.on("message", (m: { data: Buffer; messageId: string }) => {
      seen.push(`${m.messageId}:${m.data.toString()}`);
      // The first is rejected, the second abandoned once and then completed.
      if (m.messageId === "h-1") void client.reject(m as never);
      else if (seen.filter((s) => s.startsWith("h-2")).length === 1) void client.abandon(m as never);
      else void client.complete(m as never);
    });
    await until(async () => feedback.length === 2, 20_000, "feedback for both messages");
    assert.deepEqual(seen, ["h-1:first", "h-2:second", "h-2:second"]);
    assert.deepEqual(feedback.map((f) => `${f.originalMessageId}:${f.statusCode}`).sort(), [
      "h-1:Rejected",
      "h-2:Success",
    ]);
    await client.close();

    const hub = hubOf(p);
    const lost = await call(p, "DELETE", "/devices/c2d-http/messages/devicebound/not-a-lock?api-version=2021-04-12", {
      host: hub.hostName,
      auth: deviceToken(hub.hostName, "c2d-http", key),
    });
    assert.equal(lost.status, 412);
    assert.equal(lost.headers["iothub-errorcode"], "DeviceMessageLockLost");
  });

  test("over AMQP on WebSockets (the HTTPS port, /$iothub/websocket) too", async () => {
    const hub = hubOf(p);
    const LocalAmqpWs = redirectAmqp(iothub.AmqpWs, (c) => ({
      ...c,
      uri: `wss://${hub.hostName}:${p.info.ports.https}/$iothub/websocket`,
      sslOptions: { ca: p.ca.toString(), lookup: resolveAllTo("127.0.0.1") } as never,
    }));
    const overWs = iothub.Client.fromConnectionString(hub.connectionString, LocalAmqpWs as never);
    try {
      await overWs.open();
      const d = (await registryClient(p).create({ deviceId: "c2d-ws" })).responseBody;
      await overWs.send("c2d-ws", new Message("over websockets"));
      // The device polls it over HTTPS with its own token.
      const got = await call(p, "GET", "/devices/c2d-ws/messages/devicebound?api-version=2021-04-12", {
        host: hub.hostName,
        auth: deviceToken(hub.hostName, "c2d-ws", d.authentication?.symmetricKey?.primaryKey ?? ""),
      });
      assert.equal(got.status, 200);
      assert.equal(got.text, "over websockets");
      assert.match(String(got.headers.etag), /^"[0-9a-f-]{36}"$/);
    } finally {
      await overWs.close().catch(() => undefined);
    }
  });
});
