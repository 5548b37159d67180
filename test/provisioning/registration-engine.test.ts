// The registration engine in-process (service.ts without listeners), on a real SQLite store and
// the built-in hubs: reprovision outcomes, hub failures, throttling, answering in time, and a dry
// run that agrees with the registration it plans. The device port is called directly; service
// API calls go through the HTTPS handler without a socket.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createSasToken } from "../../src/attestation/sas-token.js";
import { deriveDeviceKey } from "../../src/attestation/symmetric-key.js";
import type { DeviceReply } from "../../src/provisioning/device-port.js";
import { type InProcess, startInProcess } from "../support/in-process.js";

const API = "?api-version=2021-10-01";

type Json = Record<string, unknown>;
type State = {
  status: string;
  assignedHub?: string;
  deviceId?: string;
  substatus?: string;
  errorCode?: number;
  errorMessage?: string;
};

function assigned(reply: DeviceReply): State {
  assert.equal(reply.kind, "operation", JSON.stringify(reply));
  const state = (reply.body as { registrationState: State }).registrationState;
  assert.equal(state.status, "assigned", JSON.stringify(reply.body));
  return state;
}

function finalState(reply: DeviceReply): State {
  assert.equal(reply.kind, "operation", JSON.stringify(reply));
  assert.equal(reply.status, 200);
  return (reply.body as { registrationState: State }).registrationState;
}

describe("registration engine, in-process", () => {
  let p: InProcess;
  let hub1: string;
  let hub2: string;

  /** An individual symmetric-key enrollment through the service API; resolves to its primary key. */
  async function enroll(registrationId: string, extra: Json = {}): Promise<string> {
    const r = await p.request("PUT", `/enrollments/${registrationId}${API}`, {
      body: { registrationId, attestation: { type: "symmetricKey" }, ...extra },
    });
    assert.equal(r.status, 200, r.text);
    return (r.json() as { attestation: { symmetricKey: { primaryKey: string } } }).attestation.symmetricKey.primaryKey;
  }

  const registryOf = (hostName: string) => {
    const rt = p.service.hubs.byHost(hostName);
    assert.ok(rt, hostName);
    return rt.registry;
  };

  before(async () => {
    p = await startInProcess();
    hub1 = p.info.hubs[0]?.hostName ?? "";
    hub2 = p.info.hubs[1]?.hostName ?? "";
  });
  after(async () => {
    await p.dispose();
  });

  test("the HTTPS handler answers without a socket: routes, errors and DPS bodies", async () => {
    const missing = await p.request("GET", `/enrollments/nobody${API}`);
    assert.equal(missing.status, 404);
    assert.equal((missing.json() as Json).errorCode, 404201);
    const unknown = await p.request("GET", "/no/such/route");
    assert.equal(unknown.status, 404);
    const unauthorized = await p.request("GET", `/enrollments/nobody${API}`, { auth: null });
    assert.equal(unauthorized.status, 401);
  });

  test("reprovisioning: migrate moves the twin, reset applies the initial one, never stays, same hub keeps", async () => {
    const initialTwin = { tags: { origin: "initial" }, properties: { desired: { mode: "factory" } } };
    const policies = {
      migrate: { updateHubAssignment: true, migrateDeviceData: true },
      reset: { updateHubAssignment: true, migrateDeviceData: false },
      never: { updateHubAssignment: false, migrateDeviceData: false },
    } as const;
    for (const [name, reprovisionPolicy] of Object.entries(policies)) {
      const id = `reprov-${name}`;
      const base = { allocationPolicy: "static", initialTwin, reprovisionPolicy };
      const key = await enroll(id, { ...base, iotHubs: [hub1] });
      assert.equal(assigned(await p.register(id, key)).substatus, "initialAssignment");
      await registryOf(hub1).updateTwin(id, { tags: { learned: name } }, "*", "patch");

      const same = assigned(await p.register(id, key));
      assert.equal(same.substatus, "reprovisionedToInitialAssignment", `${name}: same hub`);
      assert.equal((await registryOf(hub1).get(id)).twin.tags.learned, name, `${name}: same hub keeps the twin`);

      const current = (await p.request("GET", `/enrollments/${id}${API}`)).json() as Json;
      const moved = await p.request("PUT", `/enrollments/${id}${API}`, {
        body: { ...current, iotHubs: [hub2] },
        headers: { "if-match": String(current.etag) },
      });
      assert.equal(moved.status, 200, moved.text);
      const state = assigned(await p.register(id, key));
      if (name === "never") {
        assert.equal(state.assignedHub, hub1, "never: the device stays");
        assert.equal(state.substatus, "reprovisionedToInitialAssignment");
        assert.equal(await registryOf(hub2).find(id), undefined);
        continue;
      }
      assert.equal(state.assignedHub, hub2, `${name}: moved`);
      assert.equal(state.substatus, name === "migrate" ? "deviceDataMigrated" : "deviceDataReset");
      const twin = (await registryOf(hub2).get(id)).twin;
      assert.deepEqual(
        twin.tags,
        name === "migrate" ? { origin: "initial", learned: name } : { origin: "initial" },
        `${name}: the new hub's twin`,
      );
      assert.equal(await registryOf(hub1).find(id), undefined, `${name}: the old hub lost the device`);
    }
  });

  test("a hub that refuses fails the registration with 500301 and leaves nothing behind", async () => {
    const linked = (await p.request("GET", "/provisioningServices/provisio")).json() as {
      properties: { iotHubs: Json[] };
    };
    const stale = {
      connectionString: `HostName=${hub2};SharedAccessKeyName=iothubowner;SharedAccessKey=${Buffer.alloc(32, 7).toString("base64")}`,
    };
    // A hub linked under the built-in hub's name with a stale key: the hub refuses it.
    const withStale = linked.properties.iotHubs.map((h) =>
      h.name === hub2 ? { ...h, connectionString: stale.connectionString } : h,
    );
    const put = await p.request("PUT", "/provisioningServices/provisio", {
      body: { properties: { iotHubs: withStale } },
    });
    assert.equal(put.status, 200, put.text);
    try {
      const key = await enroll("refused-by-hub", { allocationPolicy: "static", iotHubs: [hub2] });
      const state = finalState(await p.register("refused-by-hub", key));
      assert.equal(state.status, "failed");
      assert.equal(state.errorCode, 500301);
      assert.match(state.errorMessage ?? "", /IotHubUnauthorizedAccess/);
      assert.equal(await registryOf(hub2).find("refused-by-hub"), undefined, "nothing half-applied");
      const record = (await p.request("GET", `/registrations/refused-by-hub${API}`)).json() as State;
      assert.equal(record.status, "failed");
    } finally {
      // GET masks keys and a masked key keeps the stored one: restore hub-2's from provisio.json.
      const original = linked.properties.iotHubs.map((h) =>
        h.name === hub2 ? { ...h, connectionString: p.info.hubs[1]?.connectionString } : h,
      );
      const restored = await p.request("PUT", "/provisioningServices/provisio", {
        body: { properties: { iotHubs: original } },
      });
      assert.equal(restored.status, 200, restored.text);
    }
  });

  test("refusals come back as DPS error replies; nothing is recorded", async () => {
    const key = await enroll("engine-refused");
    const wrong = await p.register("engine-refused", Buffer.alloc(32, 9).toString("base64"));
    assert.equal(wrong.kind, "error");
    assert.equal(wrong.status, 401);
    assert.equal(wrong.kind === "error" && wrong.body.errorCode, 401002);
    const invalid = await p.register("bad*id", key);
    assert.equal(invalid.kind === "error" && invalid.body.errorCode, 400006);
    const status = await p.request("GET", `/registrations/engine-refused${API}`);
    assert.equal(status.status, 404);
  });

  test("a dry run plans what the registration then does", async () => {
    const groupR = await p.request("PUT", `/enrollmentGroups/plan-group${API}`, {
      body: { enrollmentGroupId: "plan-group", attestation: { type: "symmetricKey" }, initialTwin: { tags: { g: 1 } } },
    });
    const groupKey = (groupR.json() as { attestation: { symmetricKey: { primaryKey: string } } }).attestation
      .symmetricKey.primaryKey;
    for (let i = 0; i < 12; i++) {
      const id = `plan-dev-${i}`;
      const deviceKey = deriveDeviceKey(groupKey, id);
      const wrongToken = createSasToken(
        deriveDeviceKey(Buffer.alloc(32, 5).toString("base64"), id),
        `${p.info.idScope}/registrations/${id}`,
        Math.floor(Date.now() / 1000) + 600,
        "registration",
      );
      const plan = (
        await p.request("POST", `/registrations/${id}/dryRun${API}`, {
          body: { enrollmentGroupId: "plan-group" },
        })
      ).json() as {
        allocation: { chosenHub: string };
        reprovision: { substatus: string };
        twin: unknown;
        outcome: string;
      };
      assert.equal(plan.outcome, "assigned");
      const done = assigned(await p.register(id, deviceKey));
      assert.equal(done.assignedHub, plan.allocation.chosenHub, id);
      assert.equal(done.substatus, plan.reprovision.substatus, id);
      assert.deepEqual(plan.twin, { tags: { g: 1 } });
      assert.deepEqual((await registryOf(done.assignedHub ?? "").get(id)).twin.tags, { g: 1 });
      const again = (
        await p.request("POST", `/registrations/${id}/dryRun${API}`, {
          body: { sasToken: wrongToken },
        })
      ).json() as { attestation: { verdict: string } };
      assert.equal(again.attestation.verdict, "refused", "a key of no group is refused in the plan too");
      const second = (
        await p.request("POST", `/registrations/${id}/dryRun${API}`, {
          body: { enrollmentGroupId: "plan-group" },
        })
      ).json() as { reprovision: { substatus: string; twin: string } };
      const redone = assigned(await p.register(id, deviceKey));
      assert.equal(redone.substatus, second.reprovision.substatus);
      assert.equal(second.reprovision.twin, "keep");
    }
  });
});

describe("registration engine, in-process: answering in time and throttling", () => {
  test("with no time to wait, register answers 202 assigning and the operation ends assigned", async () => {
    const p = await startInProcess({ registerWaitMs: 0 });
    try {
      const r = await p.request("PUT", `/enrollments/slow-dev${API}`, {
        body: { registrationId: "slow-dev", attestation: { type: "symmetricKey" } },
      });
      const key = (r.json() as { attestation: { symmetricKey: { primaryKey: string } } }).attestation.symmetricKey
        .primaryKey;
      const first = await p.register("slow-dev", key);
      assert.equal(first.kind, "operation");
      assert.equal(first.status, 202);
      assert.equal(first.kind === "operation" && first.retryAfter, 1);
      const operationId = first.kind === "operation" ? first.body.operationId : "";
      let reply: DeviceReply | undefined;
      for (let i = 0; i < 50; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        reply = await p.service.engine.operationStatus(
          {
            idScope: p.info.idScope,
            registrationId: "slow-dev",
            credentials: tokenFor(p, "slow-dev", key),
            sourceAddress: () => "127.0.0.1",
          },
          operationId,
        );
        if (reply.status === 200) break;
      }
      assert.ok(reply);
      assert.equal(assigned(reply).deviceId, "slow-dev");
    } finally {
      await p.dispose();
    }
  });

  test("over the rate limit a register is 429 with a retry-after, and records nothing", async () => {
    const p = await startInProcess({ registrationsPerMinute: 1 });
    try {
      const keys: string[] = [];
      for (const id of ["first-dev", "second-dev"]) {
        const r = await p.request("PUT", `/enrollments/${id}${API}`, {
          body: { registrationId: id, attestation: { type: "symmetricKey" } },
        });
        keys.push(
          (r.json() as { attestation: { symmetricKey: { primaryKey: string } } }).attestation.symmetricKey.primaryKey,
        );
      }
      assigned(await p.register("first-dev", keys[0] ?? ""));
      const throttled = await p.register("second-dev", keys[1] ?? "");
      assert.equal(throttled.kind, "error");
      assert.equal(throttled.status, 429);
      assert.ok(throttled.kind === "error" && (throttled.retryAfter ?? 0) >= 1);
      assert.equal(throttled.kind === "error" && throttled.body.errorCode, 429001);
      assert.equal((await p.request("GET", `/registrations/second-dev${API}`)).status, 404);
    } finally {
      await p.dispose();
    }
  });
  test("past the in-flight bound a register is shed before any work: 429, a spread Retry-After, nothing recorded", async () => {
    const p = await startInProcess({ maxInFlight: 2 });
    try {
      const ids = Array.from({ length: 8 }, (_, i) => `burst-${i}`);
      const keys = new Map<string, string>();
      for (const id of ids) {
        const r = await p.request("PUT", `/enrollments/${id}${API}`, {
          body: { registrationId: id, attestation: { type: "symmetricKey" } },
        });
        keys.set(
          id,
          (r.json() as { attestation: { symmetricKey: { primaryKey: string } } }).attestation.symmetricKey.primaryKey,
        );
      }
      // All at once: two are admitted, the rest are shed.
      const replies = await Promise.all(ids.map((id) => p.register(id, keys.get(id) ?? "")));
      const shed = replies.filter((r) => r.status === 429);
      assert.equal(replies.filter((r) => r.status === 200).length, 2);
      assert.equal(shed.length, 6);
      for (const r of shed) {
        assert.ok(r.kind === "error" && (r.retryAfter ?? 0) >= 2 && (r.retryAfter ?? 0) <= 9, JSON.stringify(r));
        assert.equal(r.kind === "error" && r.body.errorCode, 429001);
      }
      const shedId = ids[replies.findIndex((r) => r.status === 429)] ?? "";
      assert.equal((await p.request("GET", `/registrations/${shedId}${API}`)).status, 404);
      // Once the burst is over the shed devices get through.
      assigned(await p.register(shedId, keys.get(shedId) ?? ""));
    } finally {
      await p.dispose();
    }
  });
});

function tokenFor(p: InProcess, id: string, key: string) {
  return {
    kind: "sas" as const,
    token: createSasToken(
      key,
      `${p.info.idScope}/registrations/${id}`,
      Math.floor(Date.now() / 1000) + 600,
      "registration",
    ),
  };
}
