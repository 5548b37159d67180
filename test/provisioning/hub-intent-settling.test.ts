// Settling hub intents against a stand-in external hub: another real `provisio serve` whose
// built-in hub is reached over its REST API, as any linked hub would be (issue "Reliability under
// faults" 2). The crash points themselves are in test/sdk/hub-intents.test.ts.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { HubIntent } from "../../src/domain/hub-intent.js";
import { createLogger } from "../../src/observability/logger.js";
import { HubClientPool } from "../../src/provisioning/hub-client-pool.js";
import { HubIntentSettling } from "../../src/provisioning/hub-intent-settling.js";
import { SecretBox } from "../../src/security/secret-box.js";
import { openSqliteStore, type SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { makeInstance, makePolicy, makeRegistration, scopeOf } from "../store/store-conformance.js";
import { hubOf, registryClient } from "../support/hub-clients.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";

let external: ProvisioProcess;
let dir: string;
let store: SqliteStore;
let settling: HubIntentSettling;
const A = scopeOf(7);

before(async () => {
  external = await startProvisio({ args: ["--host", "external.localhost"] });
  dir = mkdtempSync(join(tmpdir(), "provisio-settle-"));
  store = openSqliteStore(join(dir, "provisio.db"), new SecretBox(randomBytes(32)));
  const hub = hubOf(external);
  await store.createInstance(
    makeInstance(A, "settling"),
    [makePolicy("owner")],
    [
      {
        name: hub.hostName,
        connectionString: hub.connectionString,
        location: "local",
        allocationWeight: 1,
        applyAllocationPolicy: true,
      },
    ],
  );
  const pool = new HubClientPool((hostName) =>
    hostName === hub.hostName ? { host: "127.0.0.1", port: external.info.ports.https, ca: external.ca } : undefined,
  );
  settling = new HubIntentSettling({ store, hubs: pool, node: "settler", leaseMs: 5_000, log: createLogger("silent") });
});
after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  await external.dispose();
});

const expired = (registrationId: string, previous?: string): HubIntent => ({
  operationId: `4.1.${registrationId}`,
  registrationId,
  target: { hubName: hubOf(external).hostName, deviceId: registrationId },
  ...(previous ? { previous: { hubName: hubOf(external).hostName, deviceId: previous } } : {}),
  carrier: { node: "crashed-node", until: "2020-01-01T00:00:00.000Z" },
});

test("an identity no record points at is removed from the external hub; one a record points at stays", async () => {
  const registry = registryClient(external);
  await registry.create({ deviceId: "orphan" });
  await registry.create({ deviceId: "owned" });
  // "owned" was committed: its record says it lives there. "orphan" never got its record.
  const record = makeRegistration("owned");
  record.state.assignedHub = hubOf(external).hostName;
  record.state.deviceId = "owned";
  await store.putRegistration(A, record);
  await store.putHubIntent(A, expired("orphan"));
  await store.putHubIntent(A, expired("owned"));

  assert.equal(await settling.settleDue(), 2);
  await assert.rejects(registry.get("orphan"), /DeviceNotFound|404|not registered/i);
  assert.equal((await registry.get("owned")).responseBody.deviceId, "owned");
  assert.equal(await settling.settleDue(), 0, "settled intents are gone");
});

test("a migration committed before its old identity was removed: the old identity goes", async () => {
  const registry = registryClient(external);
  await registry.create({ deviceId: "moved-old" });
  await registry.create({ deviceId: "moved-new" });
  const record = makeRegistration("moved");
  record.state.assignedHub = hubOf(external).hostName;
  record.state.deviceId = "moved-new";
  await store.putRegistration(A, record);
  await store.putHubIntent(A, {
    ...expired("moved", "moved-old"),
    target: { hubName: hubOf(external).hostName, deviceId: "moved-new" },
  });
  assert.equal(await settling.settleDue(), 1);
  await assert.rejects(registry.get("moved-old"), /DeviceNotFound|404|not registered/i);
  assert.equal((await registry.get("moved-new")).responseBody.deviceId, "moved-new");
});

test("an intent whose hub cannot be reached now is kept and tried again later", async () => {
  const unreachable = { ...expired("later"), target: { hubName: "hub-9.nowhere.localhost", deviceId: "later" } };
  await store.replaceLinkedHubs(A, [
    ...(await store.listLinkedHubs(A)),
    {
      name: "hub-9.nowhere.localhost",
      connectionString: `HostName=hub-9.nowhere.localhost;SharedAccessKeyName=iothubowner;SharedAccessKey=${randomBytes(32).toString("base64")}`,
      location: "local",
      allocationWeight: 1,
      applyAllocationPolicy: false,
    },
  ]);
  await store.putHubIntent(A, unreachable);
  assert.equal(await settling.settleDue(), 0);
  // Released for later: not claimable again right away.
  assert.deepEqual(await store.claimHubIntents("other", "2030-01-01T00:00:00.000Z", new Date().toISOString(), 10), []);
});
