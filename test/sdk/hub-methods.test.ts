// Direct methods on a built-in hub (issue "The built-in hub" point 2): the real azure-iothub
// Client invokes, the real azure-iot-device MQTT client answers; IoT Hub's timeouts and errors.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import deviceSdk from "azure-iot-device";
import deviceMqtt from "azure-iot-device-mqtt";
import iothub, { type Registry } from "azure-iothub";
import { type DeviceClient, hubAgent, hubOf, registryClient } from "../support/hub-clients.js";
import { call } from "../support/management.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";

const { Client: DeviceClientCtor } = deviceSdk;
const { Mqtt } = deviceMqtt;

interface MethodResult {
  status: number;
  payload: unknown;
}

describe("direct methods on the built-in hub", () => {
  let p: ProvisioProcess;
  let registry: Registry;
  let service: iothub.Client;
  const open: DeviceClient[] = [];

  before(async () => {
    p = await startProvisio();
    registry = registryClient(p);
    service = iothub.Client.fromConnectionString(hubOf(p).connectionString);
    // The REST half of the service client (iothub-api.md §10.1): port and CA through an agent.
    (service as unknown as { _restApiClient: { setOptions(o: unknown): void } })._restApiClient.setOptions({
      http: { agent: hubAgent(p) },
    });
  });
  after(async () => {
    for (const c of open) await c.close().catch(() => undefined);
    await p?.dispose();
  });

  const device = async (deviceId: string): Promise<DeviceClient> => {
    const d = (await registry.create({ deviceId })).responseBody;
    const key = d.authentication?.symmetricKey?.primaryKey ?? "";
    const client = DeviceClientCtor.fromConnectionString(
      `HostName=${hubOf(p).hostName};DeviceId=${deviceId};SharedAccessKey=${key};GatewayHostName=127.0.0.1:${p.info.ports.mqtt}`,
      Mqtt,
    );
    open.push(client);
    await client.setOptions({ ca: p.ca.toString() });
    return client;
  };

  const invoke = (deviceId: string, params: Record<string, unknown>): Promise<MethodResult> =>
    new Promise((resolve, reject) =>
      service.invokeDeviceMethod(deviceId, params as unknown as iothub.DeviceMethodParams, (err, result) =>
        err ? reject(err) : resolve(result as MethodResult),
      ),
    );

  test("a connected device answers: its status and payload come back to the caller", async () => {
    const client = await device("method-dev-1");
    await client.open();
    const seen: unknown[] = [];
    client.onDeviceMethod("reprovision", (request, response) => {
      seen.push(request.payload);
      response.send(202, { accepted: true, at: "now" }, () => undefined);
    });
    // onDeviceMethod subscribes asynchronously; the hub waits up to connectTimeoutInSeconds for it.
    const result = await invoke("method-dev-1", {
      methodName: "reprovision",
      payload: { reason: "move to hub-2" },
      responseTimeoutInSeconds: 10,
      connectTimeoutInSeconds: 5,
    });
    assert.deepEqual(result, { status: 202, payload: { accepted: true, at: "now" } });
    assert.deepEqual(seen, [{ reason: "move to hub-2" }]);
  });

  test("a device that is not connected: 404 DeviceNotOnline; one that connects within connectTimeoutInSeconds is reached", async () => {
    const client = await device("method-dev-2");
    const offline = await call(p, "POST", "/twins/method-dev-2/methods?api-version=2021-04-12", {
      host: hubOf(p).hostName,
      connectionString: hubOf(p).connectionString,
      body: JSON.stringify({ methodName: "ping", responseTimeoutInSeconds: 5 }),
    });
    assert.equal(offline.status, 404);
    assert.equal(offline.headers["iothub-errorcode"], "DeviceNotOnline");
    assert.match(
      offline.text,
      /ErrorCode:DeviceNotOnline;Device 'method-dev-2' is not online for direct methods \(it is not connected\)/,
    );

    const pending = invoke("method-dev-2", {
      methodName: "ping",
      responseTimeoutInSeconds: 5,
      connectTimeoutInSeconds: 10,
    });
    await new Promise((r) => setTimeout(r, 300));
    client.onDeviceMethod("ping", (_request, response) => response.send(200, "pong", () => undefined));
    await client.open();
    assert.deepEqual(await pending, { status: 200, payload: "pong" });
  });

  test("a device that does not answer in time: 504 GatewayTimeout; unknown devices and bad requests", async () => {
    const client = await device("method-dev-3");
    await client.open();
    client.onDeviceMethod("slow", () => undefined); // never answers
    const hub = { host: hubOf(p).hostName, connectionString: hubOf(p).connectionString };
    const post = (id: string, body: unknown) =>
      call(p, "POST", `/twins/${id}/methods?api-version=2021-04-12`, { ...hub, body: JSON.stringify(body) });
    const started = Date.now();
    const slow = await post("method-dev-3", {
      methodName: "slow",
      responseTimeoutInSeconds: 5,
      connectTimeoutInSeconds: 5,
    });
    assert.equal(slow.status, 504);
    assert.equal(slow.headers["iothub-errorcode"], "GatewayTimeout");
    assert.match(slow.text, /did not answer method 'slow' within 5 s/);
    assert.ok(Date.now() - started >= 5000);

    const unknown = await post("nobody-here", { methodName: "x" });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.headers["iothub-errorcode"], "DeviceNotFound");
    for (const [body, mention] of [
      [{ payload: 1 }, /'methodName' must be 1-100 characters/],
      [{ methodName: "a/b" }, /'methodName' must be/],
      [
        { methodName: "x", responseTimeoutInSeconds: 2 },
        /'responseTimeoutInSeconds' must be a whole number of seconds from 5 to 300/,
      ],
      [
        { methodName: "x", connectTimeoutInSeconds: 301 },
        /'connectTimeoutInSeconds' must be a whole number of seconds from 0 to 300/,
      ],
      [[1], /Send \{\\"methodName\\"/],
    ] as const) {
      const r = await post("method-dev-3", body);
      assert.equal(r.status, 400, r.text);
      assert.match(r.text, mention);
    }
    const unsigned = await call(p, "POST", "/twins/method-dev-3/methods?api-version=2021-04-12", {
      ...hub,
      auth: null,
      body: JSON.stringify({ methodName: "x" }),
    });
    assert.equal(unsigned.status, 401);
  });
});
