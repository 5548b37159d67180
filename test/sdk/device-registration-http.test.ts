// Device registration over HTTPS with the real azure-iot-provisioning-device SDK against
// `provisio serve` and its built-in hubs (device-api.md §5, behaviors.md §3-7).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import deviceSdk from "azure-iot-device";
import deviceMqtt from "azure-iot-device-mqtt";
import type { ProvisioningServiceClient } from "azure-iot-provisioning-service";
import type { EnrollmentGroup, IndividualEnrollment } from "azure-iot-provisioning-service/dist/interfaces.js";
import { createSasToken } from "../../src/attestation/sas-token.js";
import { deriveKey, httpTransport, registerWithKey } from "../support/device-clients.js";
import { deviceToken, enrollGroup, enrollIndividual } from "../support/enrollments.js";
import { hubOf, registryClient } from "../support/hub-clients.js";
import { call } from "../support/management.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { serviceClient } from "../support/service-client.js";

const { Client, Message } = deviceSdk;
const { Mqtt } = deviceMqtt;

interface LinkedHubWire {
  name: string;
  connectionString: string;
  location: string;
  allocationWeight: number;
  applyAllocationPolicy: boolean;
}

describe("device registration over HTTPS with the real device SDK", () => {
  let p: ProvisioProcess;
  let svc: ProvisioningServiceClient;
  let hub1: string;
  let hub2: string;

  /** Replace the primary instance's linked hubs (GET output edited and PUT back: keys stay masked). */
  async function setHubs(edit: (hubs: LinkedHubWire[]) => LinkedHubWire[], extra: Record<string, unknown> = {}) {
    const got = (await call(p, "GET", "/provisioningServices/provisio")).json() as {
      properties: { iotHubs: LinkedHubWire[] };
    };
    const r = await call(p, "PUT", "/provisioningServices/provisio", {
      body: JSON.stringify({ properties: { iotHubs: edit(got.properties.iotHubs), ...extra } }),
    });
    assert.equal(r.status, 200, r.text);
  }

  const individual = (registrationId: string, extra: Record<string, unknown> = {}) =>
    enrollIndividual(svc, registrationId, extra);
  const group = (enrollmentGroupId: string, extra: Record<string, unknown> = {}) =>
    enrollGroup(svc, enrollmentGroupId, extra);

  before(async () => {
    p = await startProvisio({ args: ["--hubs", "2"] });
    svc = serviceClient(p);
    hub1 = hubOf(p, 0).hostName;
    hub2 = hubOf(p, 1).hostName;
  });
  after(async () => {
    await p.dispose();
  });

  test("the built-in hubs are linked on first start", async () => {
    const got = (await call(p, "GET", "/provisioningServices/provisio")).json() as {
      properties: { iotHubs: LinkedHubWire[] };
    };
    assert.deepEqual(
      got.properties.iotHubs.map((h) => [h.name, h.allocationWeight, h.applyAllocationPolicy]),
      [
        [hub1, 1, true],
        [hub2, 1, true],
      ],
    );
  });

  test("an individual device reaches assigned; the hub holds its identity and initial twin; it then sends telemetry", async () => {
    const key = await individual("ind-dev-1", {
      deviceId: "custom-device-id",
      initialTwin: { tags: { site: "lab" }, properties: { desired: { interval: 30 } } },
      capabilities: { iotEdge: true },
    } as unknown as Partial<IndividualEnrollment>);
    const result = await registerWithKey(p, httpTransport(p), "ind-dev-1", key, { modelId: "dtmi:test;1" });
    assert.equal(result.status, "assigned");
    assert.equal(result.deviceId, "custom-device-id");
    assert.ok([hub1, hub2].includes(result.assignedHub));
    assert.equal(result.substatus, "initialAssignment");
    assert.deepEqual(result.symmetricKey, {});

    const state = (await svc.getDeviceRegistrationState("ind-dev-1")).responseBody;
    assert.equal(state.status, "assigned");
    assert.equal(state.assignedHub, result.assignedHub);
    assert.equal(state.deviceId, "custom-device-id");
    assert.ok(state.createdDateTimeUtc && state.lastUpdatedDateTimeUtc && state.etag);
    const enrollment = (await svc.getIndividualEnrollment("ind-dev-1")).responseBody;
    assert.equal(enrollment.registrationState?.status, "assigned");

    const registry = registryClient(p, hubOf(p, result.assignedHub === hub1 ? 0 : 1).connectionString);
    const identity = (await registry.get("custom-device-id")).responseBody;
    assert.equal(identity.authentication?.symmetricKey?.primaryKey, key, "the hub holds the enrollment key");
    assert.equal(identity.capabilities?.iotEdge, true);
    const twin = (await registry.getTwin("custom-device-id")).responseBody;
    assert.deepEqual(twin.tags, { site: "lab" });
    assert.equal(twin.properties.desired.interval, 30);

    const device = Client.fromConnectionString(
      `HostName=${result.assignedHub};DeviceId=${result.deviceId};SharedAccessKey=${key};GatewayHostName=127.0.0.1:${p.info.ports.mqtt}`,
      Mqtt,
    );
    await device.setOptions({ ca: p.ca.toString() });
    await device.open();
    await device.sendEvent(new Message(JSON.stringify({ hello: "hub" })));
    await device.close();
    const kept = await call(p, "GET", "/_provisio/messages?deviceId=custom-device-id", {
      connectionString: hubOf(p, result.assignedHub === hub1 ? 0 : 1).connectionString,
    });
    assert.deepEqual(
      (kept.json() as { payload: unknown }[]).map((m) => m.payload),
      [{ hello: "hub" }],
    );
  });

  test("an IoT Edge device provisioned by an enrollment gets its deviceScope; registering again keeps its relations", async () => {
    const key = await individual("edge-enrolled", {
      capabilities: { iotEdge: true },
      allocationPolicy: "static",
      iotHubs: [hub1],
    } as unknown as Partial<IndividualEnrollment>);
    const first = await registerWithKey(p, httpTransport(p), "edge-enrolled", key);
    const registry = registryClient(p, hubOf(p, 0).connectionString);
    type Scoped = { deviceScope?: string | null; parentScopes?: string[]; generationId?: string };
    const edge = (await registry.get(first.deviceId)).responseBody as Scoped;
    assert.equal(edge.deviceScope, `ms-azure-iot-edge://edge-enrolled-${edge.generationId}`);
    // As on IoT Hub, the edge device comes with its system modules.
    assert.deepEqual(
      ((await registry.getModulesOnDevice(first.deviceId)).responseBody as { moduleId: string }[]).map(
        (m) => m.moduleId,
      ),
      ["$edgeAgent", "$edgeHub"],
    );
    // A leaf device behind it (az iot hub device-identity parent set), then the edge device re-registers.
    await registry.create({ deviceId: "edge-enrolled-leaf", deviceScope: edge.deviceScope } as never);
    const again = await registerWithKey(p, httpTransport(p), "edge-enrolled", key);
    assert.equal(again.substatus, "reprovisionedToInitialAssignment");
    assert.equal(((await registry.get("edge-enrolled")).responseBody as Scoped).deviceScope, edge.deviceScope);
    const leaf = (await registry.get("edge-enrolled-leaf")).responseBody as Scoped;
    assert.deepEqual(leaf.parentScopes, [edge.deviceScope]);
  });

  test("a group device registers with its derived key; the hub gets the derived keys", async () => {
    const groupKey = await group("group-a", {
      initialTwin: { tags: { fleet: "a" } },
    } as unknown as Partial<EnrollmentGroup>);
    const key = deriveKey(groupKey, "group-a-dev-1");
    const result = await registerWithKey(p, httpTransport(p), "group-a-dev-1", key);
    assert.equal(result.status, "assigned");
    assert.equal(result.deviceId, "group-a-dev-1");
    assert.deepEqual(result.symmetricKey, { enrollmentGroupId: "group-a" });
    const registry = registryClient(p, hubOf(p, result.assignedHub === hub1 ? 0 : 1).connectionString);
    assert.equal((await registry.get("group-a-dev-1")).responseBody.authentication?.symmetricKey?.primaryKey, key);
    assert.deepEqual((await registry.getTwin("group-a-dev-1")).responseBody.tags, { fleet: "a" });

    const states = await new Promise<{ registrationId: string }[]>((resolve, reject) =>
      svc
        .createEnrollmentGroupDeviceRegistrationStateQuery({ query: "*" }, "group-a")
        .next((err, r) => (err ? reject(err) : resolve(r as unknown as { registrationId: string }[]))),
    );
    assert.deepEqual(
      states.map((s) => s.registrationId),
      ["group-a-dev-1"],
    );
  });

  test("a wrong key is 401 with 401002; the raw group key does not work for a device", async () => {
    await individual("ind-wrong");
    await assert.rejects(
      registerWithKey(p, httpTransport(p), "ind-wrong", Buffer.alloc(32, 4).toString("base64")),
      (err: Error) => {
        assert.equal(err.name, "UnauthorizedError");
        assert.match(err.message, /401002/);
        return true;
      },
    );
    const groupKey = await group("group-raw");
    await assert.rejects(
      registerWithKey(p, httpTransport(p), "raw-dev", groupKey),
      (err: Error) => err.name === "UnauthorizedError",
    );
  });

  test("disabled enrollments give status disabled; a disabled individual blocks a group device of the same id", async () => {
    const key = await individual("ind-disabled", { provisioningStatus: "disabled" });
    await assert.rejects(registerWithKey(p, httpTransport(p), "ind-disabled", key), /status is disabled/);
    assert.equal((await svc.getDeviceRegistrationState("ind-disabled")).responseBody.status, "disabled");

    const groupKey = await group("group-disabled", { provisioningStatus: "disabled" });
    await assert.rejects(
      registerWithKey(p, httpTransport(p), "gd-dev", deriveKey(groupKey, "gd-dev")),
      /status is disabled/,
    );

    const openGroupKey = await group("group-open");
    await individual("blocked-dev", { provisioningStatus: "disabled" });
    await assert.rejects(
      registerWithKey(p, httpTransport(p), "blocked-dev", deriveKey(openGroupKey, "blocked-dev")),
      /status is disabled/,
    );
  });

  test("an unknown ID scope is refused with 404", async () => {
    const r = await call(p, "PUT", "/0ne00000000/registrations/x/register?api-version=2019-03-31", {
      body: JSON.stringify({ registrationId: "x" }),
      auth: createSasToken(
        Buffer.alloc(32).toString("base64"),
        "0ne00000000/registrations/x",
        Math.floor(Date.now() / 1000) + 60,
        "registration",
      ),
    });
    assert.equal(r.status, 404);
    assert.equal((r.json() as { errorCode: number }).errorCode, 404301);
  });

  test("payloads: a JSON object is accepted; anything else is 400; the register body id must match", async () => {
    const key = await individual("payload-dev");
    const auth = deviceToken(p, "payload-dev", key);
    const path = `/${p.info.idScope}/registrations/payload-dev/register?api-version=2019-03-31`;
    for (const body of [
      { registrationId: "payload-dev", payload: [1, 2] },
      { registrationId: "payload-dev", payload: "text" },
    ]) {
      const r = await call(p, "PUT", path, { body: JSON.stringify(body), auth });
      assert.equal(r.status, 400, r.text);
    }
    const mismatch = await call(p, "PUT", path, { body: JSON.stringify({ registrationId: "other" }), auth });
    assert.equal(mismatch.status, 400);
    const ok = await call(p, "PUT", path, {
      body: JSON.stringify({ registrationId: "payload-dev", payload: { a: 1 } }),
      auth,
    });
    assert.equal(ok.status, 200, ok.text);
    const reply = ok.json() as { operationId: string; status: string; registrationState: { assignedHub: string } };
    assert.match(reply.operationId, /^4\.[0-9a-f]{16}\.[0-9a-f-]{36}$/);
    assert.equal(reply.status, "assigned");

    // Polling a finished operation and the status lookup both answer, with the same credentials.
    const poll = await call(p, "GET", `/${p.info.idScope}/registrations/payload-dev/operations/${reply.operationId}`, {
      auth,
    });
    assert.equal(poll.status, 200);
    assert.equal((poll.json() as { status: string }).status, "assigned");
    const lookup = await call(p, "POST", `/${p.info.idScope}/registrations/payload-dev?api-version=2019-03-31`, {
      auth,
      body: "{}",
    });
    assert.equal(lookup.status, 200);
    assert.equal((lookup.json() as { assignedHub: string }).assignedHub, reply.registrationState.assignedHub);
    const unknownOp = await call(
      p,
      "GET",
      `/${p.info.idScope}/registrations/payload-dev/operations/4.0000000000000000.x`,
      { auth },
    );
    assert.equal(unknownOp.status, 404);
  });

  test("registering again follows the default reprovision policy: same hub, identity refreshed", async () => {
    const key = await individual("again-dev");
    const first = await registerWithKey(p, httpTransport(p), "again-dev", key);
    const second = await registerWithKey(p, httpTransport(p), "again-dev", key);
    assert.equal(second.assignedHub, first.assignedHub);
    assert.equal(second.substatus, "reprovisionedToInitialAssignment");
    assert.equal(second.createdDateTimeUtc, first.createdDateTimeUtc);
  });

  test("a device moved to another hub keeps its twin (migrate) and leaves the old hub", async () => {
    const key = await individual("mover", {
      allocationPolicy: "static",
      iotHubs: [hub1],
      initialTwin: { tags: { born: "hub-1" } },
    } as unknown as Partial<IndividualEnrollment>);
    const first = await registerWithKey(p, httpTransport(p), "mover", key);
    assert.equal(first.assignedHub, hub1);
    const registry1 = registryClient(p, hubOf(p, 0).connectionString);
    await registry1.updateTwin("mover", { tags: { learned: true } }, "*");

    const e = (await svc.getIndividualEnrollment("mover")).responseBody;
    await svc.createOrUpdateIndividualEnrollment({ ...e, iotHubs: [hub2] });
    const second = await registerWithKey(p, httpTransport(p), "mover", key);
    assert.equal(second.assignedHub, hub2);
    assert.equal(second.substatus, "deviceDataMigrated");
    const registry2 = registryClient(p, hubOf(p, 1).connectionString);
    assert.deepEqual((await registry2.getTwin("mover")).responseBody.tags, { born: "hub-1", learned: true });
    await assert.rejects(registry1.get("mover"), (err: Error) => err.name === "DeviceNotFoundError");
  });

  test("static allocation and enrollment hub lists; an unlinked listed hub fails the registration", async () => {
    const key = await individual("static-dev", {
      allocationPolicy: "static",
      iotHubs: [hub2],
    } as unknown as Partial<IndividualEnrollment>);
    assert.equal((await registerWithKey(p, httpTransport(p), "static-dev", key)).assignedHub, hub2);

    const bad = await individual("unlinked-dev", {
      iotHubs: ["elsewhere.azure-devices.net"],
    } as unknown as Partial<IndividualEnrollment>);
    await assert.rejects(
      registerWithKey(p, httpTransport(p), "unlinked-dev", bad),
      (err: Error & { result?: unknown }) => {
        assert.equal(err.name, "ProvisioningRegistrationFailedError");
        return true;
      },
    );
    const state = (await svc.getDeviceRegistrationState("unlinked-dev")).responseBody;
    assert.equal(state.status, "failed");
    assert.equal(state.errorCode, 400304);
    assert.match(state.errorMessage ?? "", /elsewhere\.azure-devices\.net/);
  });

  test("a hub that refuses gives status failed with the hub's reason, nothing half-applied; a later attempt succeeds", async () => {
    const key = await individual("refused-dev", {
      allocationPolicy: "static",
      iotHubs: [hub2],
    } as unknown as Partial<IndividualEnrollment>);
    const good = hubOf(p, 1).connectionString;
    const broken = good.replace(/SharedAccessKey=.*/, `SharedAccessKey=${Buffer.alloc(32, 8).toString("base64")}`);
    await setHubs((hubs) => hubs.map((h) => (h.name === hub2 ? { ...h, connectionString: broken } : h)));
    await assert.rejects(
      registerWithKey(p, httpTransport(p), "refused-dev", key),
      (err: Error) => err.name === "ProvisioningRegistrationFailedError",
    );
    const state = (await svc.getDeviceRegistrationState("refused-dev")).responseBody;
    assert.equal(state.status, "failed");
    assert.equal(state.errorCode, 500301);
    assert.match(state.errorMessage ?? "", /IotHubUnauthorizedAccess/);
    await assert.rejects(
      registryClient(p, good).get("refused-dev"),
      (err: Error) => err.name === "DeviceNotFoundError",
    );

    await setHubs((hubs) => hubs.map((h) => (h.name === hub2 ? { ...h, connectionString: good } : h)));
    const result = await registerWithKey(p, httpTransport(p), "refused-dev", key);
    assert.equal(result.status, "assigned");
    assert.equal(result.assignedHub, hub2);
  });

  test("an unreachable hub fails the registration with a clear message", async () => {
    const key = await individual("unreachable-dev", {
      allocationPolicy: "static",
      iotHubs: ["gone.invalid"],
    } as unknown as Partial<IndividualEnrollment>);
    await setHubs((hubs) => [
      ...hubs,
      {
        name: "gone.invalid",
        connectionString: `HostName=gone.invalid;SharedAccessKeyName=iothubowner;SharedAccessKey=${Buffer.alloc(32, 1).toString("base64")}`,
        location: "nowhere",
        allocationWeight: 1,
        applyAllocationPolicy: false,
      },
    ]);
    await assert.rejects(
      registerWithKey(p, httpTransport(p), "unreachable-dev", key),
      (err: Error) => err.name === "ProvisioningRegistrationFailedError",
    );
    const state = (await svc.getDeviceRegistrationState("unreachable-dev")).responseBody;
    assert.equal(state.errorCode, 500301);
    assert.match(state.errorMessage ?? "", /gone\.invalid/);
    await setHubs((hubs) => hubs.filter((h) => h.name !== "gone.invalid"));
  });

  test("lowest latency (seed 000's two-region multitenancy): each device lands on its region's hub", async () => {
    await setHubs((hubs) => hubs.map((h) => ({ ...h, location: h.name === hub1 ? "West US" : "East US" })), {
      deviceLocationRules: [
        { ipMask: "127.0.0.2/32", location: "westus" },
        { ipMask: "127.0.0.3/32", location: "eastus" },
      ],
    });
    const groupKey = await group("contoso-us-devices", {
      allocationPolicy: "geoLatency",
      iotHubs: [hub1, hub2],
    } as unknown as Partial<EnrollmentGroup>);
    const west = await registerWithKey(
      p,
      httpTransport(p, { localAddress: "127.0.0.2" }),
      "contoso-simdevice-west",
      deriveKey(groupKey, "contoso-simdevice-west"),
    );
    const east = await registerWithKey(
      p,
      httpTransport(p, { localAddress: "127.0.0.3" }),
      "contoso-simdevice-east",
      deriveKey(groupKey, "contoso-simdevice-east"),
    );
    assert.equal(west.assignedHub, hub1, "the West US device goes to the West US hub");
    assert.equal(east.assignedHub, hub2, "the East US device goes to the East US hub");
  });

  test("two built-in hubs with weights 1:3 receive 1:3 (±10%) of 400 group devices", async () => {
    await setHubs((hubs) => hubs.map((h) => ({ ...h, allocationWeight: h.name === hub1 ? 1 : 3 })));
    const groupKey = await group("weighted", { allocationPolicy: "hashed" } as unknown as Partial<EnrollmentGroup>);
    const counts = new Map<string, number>();
    const ids = Array.from({ length: 400 }, (_, i) => `weighted-${i}`);
    // A few at a time: each is a full SDK registration over a fresh TLS connection.
    for (let i = 0; i < ids.length; i += 8) {
      const batch = ids.slice(i, i + 8);
      const results = await Promise.all(
        batch.map((id) => registerWithKey(p, httpTransport(p), id, deriveKey(groupKey, id))),
      );
      for (const r of results) counts.set(r.assignedHub, (counts.get(r.assignedHub) ?? 0) + 1);
    }
    const share = (counts.get(hub1) ?? 0) / 400;
    // 1:3 is a 25% share; ±10% of it allows 22.5%-27.5% (the hash is deterministic: ids fixed).
    assert.ok(Math.abs(share - 0.25) <= 0.025, `hub-1 got ${(share * 100).toFixed(1)}%, expected 25% ± 2.5`);
    assert.equal((counts.get(hub1) ?? 0) + (counts.get(hub2) ?? 0), 400);
  });
});

describe("device registration when the answer takes longer than the register call waits", () => {
  let p: ProvisioProcess;
  before(async () => {
    // Answer every register at once with "assigning": the SDK must poll the operation.
    p = await startProvisio({ env: { PROVISIO_REGISTER_WAIT_MS: "0" } });
  });
  after(async () => {
    await p.dispose();
  });

  test("the SDK gets 202 + Retry-After, polls the operation and ends assigned", async () => {
    const svc = serviceClient(p);
    const key = await enrollIndividual(svc, "polled-dev");
    const auth = deviceToken(p, "polled-dev", key);
    const raw = await call(p, "PUT", `/${p.info.idScope}/registrations/polled-dev/register`, {
      body: JSON.stringify({ registrationId: "polled-dev" }),
      auth,
    });
    assert.equal(raw.status, 202);
    assert.equal(raw.headers["retry-after"], "1");
    assert.equal((raw.json() as { status: string }).status, "assigning");

    const result = await registerWithKey(p, httpTransport(p), "polled-dev", key);
    assert.equal(result.status, "assigned");
  });
});
