// Telemetry out of a built-in hub to a webhook (issue "The built-in hub" point 6): the real device
// SDK sends over MQTT, a local HTTP server receives each message as JSON, in order, after a retry.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import deviceSdk from "azure-iot-device";
import deviceMqtt from "azure-iot-device-mqtt";
import { hubOf, registryClient } from "../support/hub-clients.js";
import { call } from "../support/management.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { until } from "../support/until.js";

const { Client, Message } = deviceSdk;
const { Mqtt } = deviceMqtt;

let p: ProvisioProcess;
let sink: Server;
const received: { headers: Record<string, unknown>; body: { deviceId: string; payload: unknown } }[] = [];
let refuseNext = 1; // the first POST fails with 503: the message must come again

before(async () => {
  sink = createServer((req, res) => {
    let text = "";
    req.on("data", (c: Buffer) => {
      text += c.toString();
    });
    req.on("end", () => {
      if (refuseNext > 0) {
        refuseNext--;
        res.writeHead(503).end();
        return;
      }
      received.push({ headers: req.headers, body: JSON.parse(text) });
      res.writeHead(204).end();
    });
  });
  sink.listen(0, "127.0.0.1");
  await once(sink, "listening");
  const url = `http://127.0.0.1:${(sink.address() as AddressInfo).port}/ingest`;
  p = await startProvisio({ env: { PROVISIO_TELEMETRY_WEBHOOKS: `hub-1=${url}` } });
});
after(async () => {
  await p?.dispose();
  sink?.close();
});

test("each device-to-cloud message reaches the hub's webhook as JSON, in order, retried after a 503", async () => {
  const registry = registryClient(p);
  const d = (await registry.create({ deviceId: "routed-dev" })).responseBody;
  const device = Client.fromConnectionString(
    `HostName=${hubOf(p).hostName};DeviceId=routed-dev;SharedAccessKey=${d.authentication?.symmetricKey?.primaryKey};GatewayHostName=127.0.0.1:${p.info.ports.mqtt}`,
    Mqtt,
  );
  await device.setOptions({ ca: p.ca.toString() });
  await device.open();
  try {
    for (const n of [1, 2, 3]) await device.sendEvent(new Message(JSON.stringify({ n })));
  } finally {
    await device.close();
  }
  await until(async () => received.length === 3, 15_000, "three messages at the webhook");
  assert.deepEqual(
    received.map((r) => r.body.payload),
    [{ n: 1 }, { n: 2 }, { n: 3 }],
  );
  assert.equal(received[0]?.body.deviceId, "routed-dev");
  assert.equal(received[0]?.headers["iothub-connection-device-id"], "routed-dev");
  assert.equal(received[0]?.headers["content-type"], "application/json");

  const stats = await call(p, "GET", "/_provisio/routes?api-version=2021-04-12", {
    host: hubOf(p).hostName,
    connectionString: hubOf(p).connectionString,
  });
  assert.deepEqual(
    (stats.json() as { delivered: number; failed: number; dropped: number; backlog: number }[]).map((s) => [
      s.delivered,
      s.failed,
      s.dropped,
      s.backlog,
    ]),
    [[3, 0, 0, 0]],
  );
});

test("a webhook for a hub that does not run, or not a URL, is refused at start", async () => {
  await assert.rejects(
    startProvisio({ env: { PROVISIO_TELEMETRY_WEBHOOKS: "hub-3=http://127.0.0.1:1/x" } }),
    /PROVISIO_TELEMETRY_WEBHOOKS names hub-3, but only 1 built-in hub\(s\) run/,
  );
  await assert.rejects(
    startProvisio({ env: { PROVISIO_TELEMETRY_WEBHOOKS: "hub-1=ftp://example" } }),
    /PROVISIO_TELEMETRY_WEBHOOKS must list hub-N=http\(s\):\/\/… entries, not 'hub-1=ftp:\/\/example'/,
  );
});
