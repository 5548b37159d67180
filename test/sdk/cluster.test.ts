// Several nodes on one PostgreSQL database behave as one service (issue "PostgreSQL and several
// nodes"): two real `provisio serve` processes, the real device and service SDKs.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import deviceSdk from "azure-iot-device";
import deviceMqtt from "azure-iot-device-mqtt";
import { createSasToken } from "../../src/attestation/sas-token.js";
import { formatConnectionString } from "../../src/domain/connection-string.js";
import { DEVICE_TRANSPORTS, deriveKey, httpTransport, registerWithKey } from "../support/device-clients.js";
import { deviceToken, enrollGroup, enrollIndividual } from "../support/enrollments.js";
import { hubOf, registryClient } from "../support/hub-clients.js";
import { call } from "../support/management.js";
import { createTestDatabase, type TestDatabase } from "../support/postgres.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { serviceClient } from "../support/service-client.js";
import { until } from "../support/until.js";

// The device SDK packages are CommonJS without named-export hints.
const { Client } = deviceSdk;
const { Mqtt } = deviceMqtt;

describe("two nodes on one PostgreSQL database", () => {
  let db: TestDatabase;
  let a: ProvisioProcess;
  let b: ProvisioProcess;
  const masterKey = randomBytes(32).toString("hex");

  before(async () => {
    db = await createTestDatabase();
    const env = {
      PROVISIO_DATABASE_URL: db.url,
      PROVISIO_MASTER_KEY: masterKey,
      PROVISIO_REGISTRATIONS_PER_MINUTE: "0",
    };
    // Started together: bootstrap (instance, hubs, CA) happens once, whichever is first.
    [a, b] = await Promise.all([startProvisio({ env }), startProvisio({ env })]);
  });
  after(async () => {
    await Promise.all([a?.dispose(), b?.dispose()]);
    await db?.drop();
  });

  test("both nodes are one service: the same ID scope, keys, hubs and development CA", () => {
    assert.equal(a.info.idScope, b.info.idScope);
    assert.equal(a.info.serviceConnectionString, b.info.serviceConnectionString);
    assert.deepEqual(a.info.hubs, b.info.hubs);
    assert.equal(readFileSync(a.info.caFile, "utf8"), readFileSync(b.info.caFile, "utf8"));
    const serverCert = (p: ProvisioProcess) => readFileSync(join(p.dataDir, "tls", "server.pem"), "utf8");
    assert.equal(serverCert(a), serverCert(b), "one server certificate, issued once");
    assert.notEqual(a.info.ports.https, b.info.ports.https, "each node has its own ports");
  });

  test("enrolled through one node, a device registers through the other on every protocol", async () => {
    const key = await enrollIndividual(serviceClient(a), "cluster-dev-1");
    for (const t of DEVICE_TRANSPORTS) {
      const { transport, host } = t.make(b);
      const r = await registerWithKey(b, transport, "cluster-dev-1", key, undefined, host);
      assert.equal(r.status, "assigned", t.name);
    }
    const state = await serviceClient(a).getDeviceRegistrationState("cluster-dev-1");
    assert.equal(state.responseBody.status, "assigned");
  });

  test("an operation started on one node is polled on the other", async () => {
    const key = await enrollIndividual(serviceClient(a), "cluster-dev-2");
    const path = `/${a.info.idScope}/registrations/cluster-dev-2`;
    const auth = deviceToken(a, "cluster-dev-2", key);
    const started = await call(a, "PUT", `${path}/register?api-version=2019-03-31`, {
      body: JSON.stringify({ registrationId: "cluster-dev-2" }),
      auth,
    });
    assert.equal(started.status, 200, started.text);
    const { operationId } = started.json() as { operationId: string };
    const polled = await call(b, "GET", `${path}/operations/${operationId}?api-version=2019-03-31`, { auth });
    assert.equal(polled.status, 200, polled.text);
    assert.equal((polled.json() as { status: string }).status, "assigned");
  });

  test("a group disabled through one node refuses its devices on the other within a second", async () => {
    const svcA = serviceClient(a);
    const groupKey = await enrollGroup(svcA, "cluster-group");
    const key = deriveKey(groupKey, "cluster-dev-3");
    assert.equal((await registerWithKey(b, httpTransport(b), "cluster-dev-3", key)).status, "assigned");
    const group = (await svcA.getEnrollmentGroup("cluster-group")).responseBody;
    await svcA.createOrUpdateEnrollmentGroup({ ...group, provisioningStatus: "disabled" });
    const path = `/${b.info.idScope}/registrations/cluster-dev-3/register?api-version=2019-03-31`;
    const ms = await until(async () => {
      const r = await call(b, "PUT", path, {
        body: JSON.stringify({ registrationId: "cluster-dev-3" }),
        auth: deviceToken(b, "cluster-dev-3", key),
      });
      return (r.json() as { status?: string }).status === "disabled";
    }, 1_000);
    assert.ok(ms <= 1_000);
    await assert.rejects(registerWithKey(b, httpTransport(b), "cluster-dev-3", key), /status is disabled/);
  });

  test("an instance created through one node serves devices on the other within a second", async () => {
    const created = await call(a, "PUT", "/provisioningServices/cluster-second", {
      body: JSON.stringify({
        properties: { iotHubs: [{ connectionString: hubOf(a, 0).connectionString, location: "local" }] },
      }),
    });
    assert.equal(created.status, 201, created.text);
    const scope = (created.json() as { properties: { idScope: string } }).properties.idScope;
    const keys = (await call(a, "POST", "/provisioningServices/cluster-second/listkeys")).json() as {
      value: { keyName: string; primaryKey: string }[];
    };
    const owner = keys.value[0];
    assert.ok(owner);
    const svc = serviceClient(
      a,
      formatConnectionString({ hostName: "cluster-second.localhost", keyName: owner.keyName, key: owner.primaryKey }),
      { resolveTo: "127.0.0.1" },
    );
    const key = await enrollIndividual(svc, "cluster-dev-4");
    const path = `/${scope}/registrations/cluster-dev-4/register?api-version=2019-03-31`;
    const auth = createSasToken(
      key,
      `${scope}/registrations/cluster-dev-4`,
      Math.floor(Date.now() / 1000) + 600,
      "registration",
    );
    const ms = await until(async () => {
      const r = await call(b, "PUT", path, { body: JSON.stringify({ registrationId: "cluster-dev-4" }), auth });
      return (r.json() as { status?: string }).status === "assigned";
    }, 1_000);
    assert.ok(ms <= 1_000);
  });

  test("a device connected to the built-in hub on one node hears a desired change written through the other", async () => {
    const hub = hubOf(a, 0);
    const registryB = registryClient(b, hub.connectionString);
    const device = (await registryB.create({ deviceId: "cluster-twin-dev" })).responseBody;
    const key = device.authentication?.symmetricKey?.primaryKey ?? "";
    const client = Client.fromConnectionString(
      `HostName=${hub.hostName};DeviceId=cluster-twin-dev;SharedAccessKey=${key};GatewayHostName=127.0.0.1:${a.info.ports.mqtt}`,
      Mqtt,
    );
    try {
      await client.setOptions({ ca: a.ca.toString() });
      await client.open();
      const twin = await client.getTwin();
      const pushed = new Promise<Record<string, unknown>>((resolve) => {
        twin.on("properties.desired", (delta: Record<string, unknown>) => {
          if (delta.interval === 42) resolve(delta);
        });
      });
      await registryB.updateTwin("cluster-twin-dev", { properties: { desired: { interval: 42 } } }, "*");
      assert.equal((await pushed).interval, 42);
    } finally {
      await client.close();
    }
  });
});

describe("a node refuses to join with a wrong or missing master key", () => {
  let db: TestDatabase;
  let first: ProvisioProcess;
  before(async () => {
    db = await createTestDatabase();
    first = await startProvisio({
      env: { PROVISIO_DATABASE_URL: db.url, PROVISIO_MASTER_KEY: randomBytes(32).toString("hex") },
    });
  });
  after(async () => {
    await first?.dispose();
    await db?.drop();
  });

  test("no master key", async () => {
    await assert.rejects(startProvisio({ env: { PROVISIO_DATABASE_URL: db.url } }), /needs PROVISIO_MASTER_KEY/);
  });

  test("another master key", async () => {
    await assert.rejects(
      startProvisio({ env: { PROVISIO_DATABASE_URL: db.url, PROVISIO_MASTER_KEY: randomBytes(32).toString("hex") } }),
      /PROVISIO_MASTER_KEY is not the key this database's secrets were sealed with/,
    );
  });
});

describe("the registration rate limit holds across the cluster", () => {
  test("two registrations a minute: the third is refused on the other node", async () => {
    const db = await createTestDatabase();
    const env = {
      PROVISIO_DATABASE_URL: db.url,
      PROVISIO_MASTER_KEY: randomBytes(32).toString("hex"),
      PROVISIO_REGISTRATIONS_PER_MINUTE: "2",
    };
    const [a, b] = await Promise.all([startProvisio({ env }), startProvisio({ env })]);
    try {
      const key = await enrollIndividual(serviceClient(a), "limited-dev");
      const register = (p: ProvisioProcess) =>
        call(p, "PUT", `/${p.info.idScope}/registrations/limited-dev/register?api-version=2019-03-31`, {
          body: JSON.stringify({ registrationId: "limited-dev" }),
          auth: deviceToken(p, "limited-dev", key),
        });
      assert.equal((await register(a)).status, 200);
      assert.equal((await register(b)).status, 200);
      const third = await register(a);
      assert.equal(third.status, 429);
      assert.match(String(third.headers["retry-after"]), /^[1-9]\d*$/);
      assert.equal((await register(b)).status, 429);
    } finally {
      await Promise.all([a.dispose(), b.dispose()]);
      await db.drop();
    }
  });
});
