// A node of a cluster is killed (kill -9) while devices register through it (issue "PostgreSQL
// and several nodes", "A node dies"): every registration answered `assigned` is kept, devices
// retrying against the surviving node succeed, and once settling ran no hub identity exists
// without its record or on two hubs.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { test } from "node:test";
import { deriveKey } from "../support/device-clients.js";
import { deviceToken, enrollGroup } from "../support/enrollments.js";
import { hubOf, registryClient } from "../support/hub-clients.js";
import { call } from "../support/management.js";
import { createTestDatabase } from "../support/postgres.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { serviceClient } from "../support/service-client.js";

const DEVICES = 120;
const CONCURRENCY = 12;

interface Answer {
  status: string;
  registrationState?: { assignedHub?: string; deviceId?: string };
}

/** One register call; undefined when the node died under it (reset, refused). */
async function register(p: ProvisioProcess, id: string, key: string): Promise<Answer | undefined> {
  try {
    const r = await call(p, "PUT", `/${p.info.idScope}/registrations/${id}/register?api-version=2019-03-31`, {
      body: JSON.stringify({ registrationId: id }),
      auth: deviceToken(p, id, key),
    });
    return r.status === 200 ? (r.json() as Answer) : undefined;
  } catch {
    return undefined;
  }
}

test("kill -9 of one node under load: nothing answered assigned is lost, nothing is left half-done", async () => {
  const db = await createTestDatabase();
  const env = {
    PROVISIO_DATABASE_URL: db.url,
    PROVISIO_MASTER_KEY: randomBytes(32).toString("hex"),
    PROVISIO_OPERATION_LEASE_MS: "1500",
  };
  const args = ["--hubs", "2"];
  const [a, b] = await Promise.all([startProvisio({ args, env }), startProvisio({ args, env })]);
  try {
    const groupKey = await enrollGroup(serviceClient(b), "death-group");
    const answered = new Map<string, Answer>();
    let started = 0;
    let killed = false;
    const kill = async () => {
      killed = true;
      const exited = once(a.child, "exit");
      a.child.kill("SIGKILL");
      await exited;
    };
    const device = async (i: number) => {
      const id = `death-dev-${i}`;
      const key = deriveKey(groupKey, id);
      started++;
      if (started === DEVICES / 3 && !killed) void kill();
      // Node A first, as a load balancer would send it; on failure the device retries on B.
      let answer = killed ? undefined : await register(a, id, key);
      for (let attempt = 0; !answer && attempt < 20; attempt++) answer = await register(b, id, key);
      assert.ok(answer, `${id} never registered`);
      assert.equal(answer.status, "assigned", `${id}: ${JSON.stringify(answer)}`);
      answered.set(id, answer);
    };
    const queue = Array.from({ length: DEVICES }, (_, i) => i);
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (let i = queue.shift(); i !== undefined; i = queue.shift()) await device(i);
      }),
    );
    assert.ok(killed, "node A was killed during the load");
    assert.equal(answered.size, DEVICES);

    // Every answer is what the records say.
    const svc = serviceClient(b);
    for (const [id, answer] of answered) {
      const state = (await svc.getDeviceRegistrationState(id)).responseBody;
      assert.equal(state.status, "assigned", id);
      assert.equal(state.assignedHub, answer.registrationState?.assignedHub, id);
    }

    // After a lease and a settling pass: each identity on a hub has a record pointing at it.
    await new Promise((r) => setTimeout(r, 3_000));
    const seen = new Map<string, string>();
    for (const n of [0, 1]) {
      const hub = hubOf(b, n).hostName;
      const devices = (await registryClient(b, hubOf(b, n).connectionString).list()).responseBody;
      for (const d of devices) {
        const other = seen.get(d.deviceId);
        assert.equal(other, undefined, `${d.deviceId} is on two hubs (${other}, ${hub})`);
        seen.set(d.deviceId, hub);
        assert.equal(
          answered.get(d.deviceId)?.registrationState?.assignedHub,
          hub,
          `${d.deviceId} on ${hub} has no record there`,
        );
      }
    }
    assert.equal(seen.size, DEVICES, "every device has its identity");
  } finally {
    await Promise.all([a.dispose(), b.dispose()]);
    await db.drop();
  }
});
