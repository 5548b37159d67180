// Modules on a built-in hub (issue "The built-in hub" point 3): the real azure-iothub Registry
// manages module identities and twins; the real ModuleClient connects over MQTT with its own key,
// sends telemetry, reads and reports its twin, hears desired changes and answers a direct method.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import deviceSdk from "azure-iot-device";
import deviceMqtt from "azure-iot-device-mqtt";
import iothub, { type Registry } from "azure-iothub";
import { hubAgent, hubOf, registryClient } from "../support/hub-clients.js";
import { call } from "../support/management.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { until } from "../support/until.js";

const { ModuleClient, Message } = deviceSdk;
const { Mqtt } = deviceMqtt;

interface Kept {
  deviceId: string;
  systemProperties: Record<string, string>;
  payload: unknown;
}

describe("modules on the built-in hub", () => {
  let p: ProvisioProcess;
  let registry: Registry;
  const open: InstanceType<typeof ModuleClient>[] = [];

  before(async () => {
    p = await startProvisio();
    registry = registryClient(p);
    await registry.create({ deviceId: "edge-1", capabilities: { iotEdge: true } });
  });
  after(async () => {
    for (const c of open) await c.close().catch(() => undefined);
    await p?.dispose();
  });

  test("module identities: an edge device starts with $edgeAgent and $edgeHub; add, get, list, update, remove; errors name the module", async () => {
    const system = (await registry.getModulesOnDevice("edge-1")).responseBody as { moduleId: string }[];
    assert.deepEqual(
      system.map((m) => m.moduleId),
      ["$edgeAgent", "$edgeHub"],
    );
    const added = (await registry.addModule({ deviceId: "edge-1", moduleId: "filter" } as never)).responseBody as {
      moduleId: string;
      deviceId: string;
      authentication: { symmetricKey: { primaryKey: string } };
      etag: string;
    };
    assert.equal(added.moduleId, "filter");
    assert.equal(added.deviceId, "edge-1");
    assert.ok(added.authentication.symmetricKey.primaryKey, "keys are made when none are sent");
    await registry.updateModule({ deviceId: "edge-1", moduleId: "$edgeAgent", managedBy: "iotEdge" } as never, true);
    const listed = (await registry.getModulesOnDevice("edge-1")).responseBody as { moduleId: string }[];
    assert.deepEqual(
      listed.map((m) => m.moduleId),
      ["$edgeAgent", "$edgeHub", "filter"],
    );
    const got = (await registry.getModule("edge-1", "$edgeAgent")).responseBody as { managedBy: string };
    assert.equal(got.managedBy, "iotEdge");

    const hub = { host: hubOf(p).hostName, connectionString: hubOf(p).connectionString };
    const dup = await call(p, "PUT", "/devices/edge-1/modules/filter?api-version=2021-04-12", {
      ...hub,
      body: JSON.stringify({ deviceId: "edge-1", moduleId: "filter" }),
    });
    assert.equal(dup.status, 409);
    assert.equal(dup.headers["iothub-errorcode"], "ModuleAlreadyExistsOnDevice");
    const missing = await call(p, "GET", "/devices/edge-1/modules/nothing?api-version=2021-04-12", hub);
    assert.equal(missing.status, 404);
    assert.equal(missing.headers["iothub-errorcode"], "ModuleNotFound");
    const noDevice = await call(p, "GET", "/devices/nobody/modules?api-version=2021-04-12", hub);
    assert.equal(noDevice.status, 404);
    assert.equal(noDevice.headers["iothub-errorcode"], "DeviceNotFound");
    const badBody = await call(p, "PUT", "/devices/edge-1/modules/x?api-version=2021-04-12", {
      ...hub,
      body: JSON.stringify({ deviceId: "edge-1", moduleId: "y" }),
    });
    assert.equal(badBody.status, 400);
    assert.match(badBody.text, /moduleId 'y' must equal the id in the path, 'x'/);

    // Module twins answer queries FROM devices.modules.
    const q = await registry
      .createQuery("SELECT * FROM devices.modules WHERE deviceId = 'edge-1' AND moduleId = '$edgeAgent'")
      .nextAsTwin();
    assert.deepEqual(
      (q.result as unknown as { moduleId: string; deviceId: string }[]).map((t) => `${t.deviceId}/${t.moduleId}`),
      ["edge-1/$edgeAgent"],
    );
    await registry.removeModule("edge-1", "$edgeAgent");
    assert.deepEqual(
      ((await registry.getModulesOnDevice("edge-1")).responseBody as { moduleId: string }[]).map((m) => m.moduleId),
      ["$edgeHub", "filter"],
    );
  });

  test("a module client connects with its own key, sends telemetry, uses its twin and answers a method", async () => {
    const m = (await registry.getModule("edge-1", "filter")).responseBody as {
      authentication: { symmetricKey: { primaryKey: string } };
    };
    const hubHost = hubOf(p).hostName;
    const client = ModuleClient.fromConnectionString(
      `HostName=${hubHost};DeviceId=edge-1;ModuleId=filter;SharedAccessKey=${m.authentication.symmetricKey.primaryKey};GatewayHostName=127.0.0.1:${p.info.ports.mqtt}`,
      Mqtt,
    );
    open.push(client);
    await client.setOptions({ ca: p.ca.toString() });
    await client.open();

    await client.sendEvent(new Message(JSON.stringify({ temperature: 30 })));
    const kept = async () =>
      (
        await call(p, "GET", "/_provisio/messages?deviceId=edge-1", {
          host: hubHost,
          connectionString: hubOf(p).connectionString,
        })
      ).json() as Kept[];
    await until(async () => (await kept()).length === 1, 5_000, "the module's message");
    const [message] = await kept();
    assert.deepEqual(message?.payload, { temperature: 30 });
    assert.equal(message?.systemProperties["iothub-connection-module-id"], "filter");

    const twin = await client.getTwin();
    const desired: unknown[] = [];
    twin.on("properties.desired", (d: unknown) => desired.push(d));
    await new Promise<void>((resolve, reject) =>
      twin.properties.reported.update({ status: "running" }, (err?: Error) => (err ? reject(err) : resolve())),
    );
    const patched = (await registry.updateModuleTwin("edge-1", "filter", { properties: { desired: { rate: 5 } } }, "*"))
      .responseBody as unknown as { moduleId: string; properties: { desired: { rate: number } } };
    assert.equal(patched.moduleId, "filter");
    assert.equal(patched.properties.desired.rate, 5);
    await until(async () => desired.some((d) => (d as { rate?: number }).rate === 5), 5_000, "the desired push");
    const seen = (await registry.getModuleTwin("edge-1", "filter")).responseBody as unknown as {
      properties: { reported: { status: string } };
    };
    assert.equal(seen.properties.reported.status, "running");

    client.onMethod("flush", (_request, response) => response?.send(200, { flushed: 3 }, () => undefined));
    const service = iothub.Client.fromConnectionString(hubOf(p).connectionString);
    (service as unknown as { _restApiClient: { setOptions(o: unknown): void } })._restApiClient.setOptions({
      http: { agent: hubAgent(p) },
    });
    const { result } = await service.invokeDeviceMethod("edge-1", "filter", {
      methodName: "flush",
      payload: null,
      responseTimeoutInSeconds: 5,
      connectTimeoutInSeconds: 5,
    } as never);
    assert.deepEqual(result, { status: 200, payload: { flushed: 3 } });
    await client.close();
  });

  test("deleting the device deletes its modules", async () => {
    await registry.delete("edge-1");
    await registry.create({ deviceId: "edge-1" });
    assert.deepEqual((await registry.getModulesOnDevice("edge-1")).responseBody, []);
  });
});
