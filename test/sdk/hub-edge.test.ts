// IoT Edge on a built-in hub (issue "The built-in hub", modules): what an edge runtime and
// `az iot edge set-modules` need of the hub, driven with the real azure-iothub Registry and the
// real ModuleClient: system modules made with the edge device, a deployment applied with
// applyConfigurationContent and read by $edgeAgent over AMQP, and the device's own token
// managing its modules as the runtime does.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import deviceSdk from "azure-iot-device";
import deviceAmqp from "azure-iot-device-amqp";
import type { Registry } from "azure-iothub";
import { createSasToken } from "../../src/attestation/sas-token.js";
import { hubOf, registryClient } from "../support/hub-clients.js";
import { call } from "../support/management.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";

const { ModuleClient } = deviceSdk;
const { Amqp } = deviceAmqp;

const deployment = {
  modulesContent: {
    $edgeAgent: {
      "properties.desired": {
        schemaVersion: "1.1",
        runtime: { type: "docker", settings: { minDockerVersion: "v1.25" } },
        systemModules: {
          edgeAgent: { type: "docker", settings: { image: "mcr.microsoft.com/azureiotedge-agent:1.5" } },
          edgeHub: {
            type: "docker",
            status: "running",
            restartPolicy: "always",
            settings: { image: "mcr.microsoft.com/azureiotedge-hub:1.5" },
          },
        },
        modules: {
          sensor: {
            type: "docker",
            status: "running",
            restartPolicy: "always",
            settings: { image: "mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.5" },
          },
        },
      },
    },
    $edgeHub: {
      "properties.desired": { schemaVersion: "1.1", routes: { upstream: "FROM /messages/* INTO $upstream" } },
    },
    sensor: { "properties.desired": { SendInterval: 5 } },
  },
};

describe("IoT Edge devices on the built-in hub", () => {
  let p: ProvisioProcess;
  let registry: Registry;
  const open: { close(): Promise<unknown> }[] = [];

  before(async () => {
    p = await startProvisio();
    registry = registryClient(p);
  });
  after(async () => {
    for (const c of open) await c.close().catch(() => undefined);
    await p?.dispose();
  });

  const moduleIds = async (deviceId: string) =>
    ((await registry.getModulesOnDevice(deviceId)).responseBody as { moduleId: string }[]).map((m) => m.moduleId);

  test("an edge device is made with $edgeAgent and $edgeHub; one that becomes an edge device gets them then", async () => {
    await registry.create({ deviceId: "gateway-1", capabilities: { iotEdge: true } });
    assert.deepEqual(await moduleIds("gateway-1"), ["$edgeAgent", "$edgeHub"]);
    const agent = (await registry.getModule("gateway-1", "$edgeAgent")).responseBody as unknown as {
      authentication: { type: string; symmetricKey: { primaryKey: string } };
    };
    assert.equal(agent.authentication.type, "sas");
    assert.ok(agent.authentication.symmetricKey.primaryKey, "its key is made");

    await registry.create({ deviceId: "plain-1" });
    assert.deepEqual(await moduleIds("plain-1"), []);
    const plain = (await registry.get("plain-1")).responseBody;
    await registry.update({ ...plain, capabilities: { iotEdge: true } });
    assert.deepEqual(await moduleIds("plain-1"), ["$edgeAgent", "$edgeHub"]);
  });

  test("a deployment (applyConfigurationContent) sets each module's desired properties; $edgeAgent reads it over AMQP", async () => {
    await registry.create({ deviceId: "gateway-2", capabilities: { iotEdge: true } });
    await registry.applyConfigurationContentOnDevice("gateway-2", deployment as never);
    assert.deepEqual(await moduleIds("gateway-2"), ["$edgeAgent", "$edgeHub", "sensor"]);
    const hubTwin = (await registry.getModuleTwin("gateway-2", "$edgeHub")).responseBody as unknown as {
      properties: { desired: { routes: Record<string, string> } };
    };
    assert.deepEqual(hubTwin.properties.desired.routes, { upstream: "FROM /messages/* INTO $upstream" });

    // $edgeAgent connects with its own key, as the runtime connects it, and finds its deployment.
    const agent = (await registry.getModule("gateway-2", "$edgeAgent")).responseBody as {
      authentication: { symmetricKey: { primaryKey: string } };
    };
    const client = ModuleClient.fromConnectionString(
      `HostName=${hubOf(p).hostName};DeviceId=gateway-2;ModuleId=$edgeAgent;SharedAccessKey=${agent.authentication.symmetricKey.primaryKey};GatewayHostName=127.0.0.1:${p.info.ports.amqp}`,
      Amqp,
    );
    open.push(client);
    await client.setOptions({ ca: p.ca.toString() });
    await client.open();
    const twin = await client.getTwin();
    const desired = twin.properties.desired as unknown as { modules: Record<string, unknown>; $version: number };
    assert.deepEqual(Object.keys(desired.modules), ["sensor"]);
    await new Promise<void>((resolve, reject) =>
      twin.properties.reported.update(
        { lastDesiredVersion: desired.$version, lastDesiredStatus: { code: 200 } },
        (err?: Error) => (err ? reject(err) : resolve()),
      ),
    );

    // A second deployment replaces the desired properties, it does not merge into them.
    const next = structuredClone(deployment);
    next.modulesContent.sensor["properties.desired"] = { Threshold: 30 } as never;
    await registry.applyConfigurationContentOnDevice("gateway-2", next as never);
    const sensor = (await registry.getModuleTwin("gateway-2", "sensor")).responseBody as unknown as {
      properties: { desired: Record<string, unknown> };
    };
    assert.equal(sensor.properties.desired.Threshold, 30);
    assert.equal("SendInterval" in sensor.properties.desired, false);
  });

  test("deployment refusals: not an edge device, no modulesContent, a module without properties.desired", async () => {
    await registry.create({ deviceId: "not-edge" });
    const hub = { host: hubOf(p).hostName, connectionString: hubOf(p).connectionString };
    const post = (id: string, body: unknown) =>
      call(p, "POST", `/devices/${id}/applyConfigurationContent?api-version=2021-04-12`, {
        ...hub,
        body: JSON.stringify(body),
      });
    const notEdge = await post("not-edge", deployment);
    assert.equal(notEdge.status, 400);
    assert.match(notEdge.text, /not an IoT Edge device/);
    await registry.create({ deviceId: "gateway-3", capabilities: { iotEdge: true } });
    const empty = await post("gateway-3", {});
    assert.equal(empty.status, 400);
    assert.match(empty.text, /modulesContent/);
    const bad = await post("gateway-3", { modulesContent: { sensor: { desired: {} } } });
    assert.equal(bad.status, 400);
    assert.match(bad.text, /modulesContent\['sensor'\] must be/);
    const badId = await post("gateway-3", {
      modulesContent: { good: { "properties.desired": {} }, "no/slash": { "properties.desired": {} } },
    });
    assert.equal(badId.status, 400);
    assert.match(badId.text, /'no\/slash', which is not a valid module id/);
    assert.deepEqual(await moduleIds("gateway-3"), ["$edgeAgent", "$edgeHub"], "nothing was made");
    const unknown = await post("nobody", deployment);
    assert.equal(unknown.status, 404);
  });

  test("an edge device's own token manages its modules (as its runtime does); another device's does not", async () => {
    const edge = (await registry.create({ deviceId: "gateway-4", capabilities: { iotEdge: true } })).responseBody;
    const leaf = (await registry.create({ deviceId: "leaf-4" })).responseBody;
    const host = hubOf(p).hostName;
    const tokenOf = (deviceId: string, key: string) =>
      createSasToken(key, encodeURIComponent(`${host}/devices/${deviceId}`), Math.floor(Date.now() / 1000) + 600);
    const edgeToken = tokenOf("gateway-4", edge.authentication?.symmetricKey?.primaryKey ?? "");
    const asEdge = { host, auth: edgeToken };
    const made = await call(p, "PUT", "/devices/gateway-4/modules/filter?api-version=2021-04-12", {
      ...asEdge,
      body: JSON.stringify({ deviceId: "gateway-4", moduleId: "filter", managedBy: "iotEdge" }),
    });
    assert.equal(made.status, 200, made.text);
    const listed = await call(p, "GET", "/devices/gateway-4/modules?api-version=2021-04-12", asEdge);
    assert.deepEqual(
      (listed.json() as { moduleId: string }[]).map((m) => m.moduleId),
      ["$edgeAgent", "$edgeHub", "filter"],
    );
    const leafToken = tokenOf("leaf-4", leaf.authentication?.symmetricKey?.primaryKey ?? "");
    const foreign = await call(p, "GET", "/devices/gateway-4/modules?api-version=2021-04-12", {
      host,
      auth: leafToken,
    });
    assert.equal(foreign.status, 401);
    // A device that is not an edge device cannot manage modules with its token.
    const own = await call(p, "PUT", "/devices/leaf-4/modules/m?api-version=2021-04-12", {
      host,
      auth: leafToken,
      body: JSON.stringify({ deviceId: "leaf-4", moduleId: "m" }),
    });
    assert.equal(own.status, 401);
  });
});
