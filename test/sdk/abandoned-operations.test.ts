// A node dies with registrations in progress (issues "PostgreSQL and several nodes", "Reliability
// under faults" 1): the operations it carried end, failed with 500302 so devices register again,
// once its lease runs out: polled on another node of a cluster, or on the node restarted.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import type { EnrollmentGroup } from "azure-iot-provisioning-service/dist/interfaces.js";
import { deriveKey } from "../support/device-clients.js";
import { deviceToken } from "../support/enrollments.js";
import { call } from "../support/management.js";
import { createTestDatabase } from "../support/postgres.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { serviceClient } from "../support/service-client.js";

const LEASE_MS = 1_500;

let silent: Server;
let silentUrl: string;
before(async () => {
  silent = createServer(() => undefined); // a custom allocation webhook that never answers
  silent.listen(0, "127.0.0.1");
  await once(silent, "listening");
  silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/allocate`;
});
after(() => {
  silent.closeAllConnections();
  silent.close();
});

/** A group whose registrations hang on the webhook; resolves to the device key of `registrationId`. */
async function hangingDevice(p: ProvisioProcess, registrationId: string): Promise<string> {
  const group = {
    enrollmentGroupId: `hanging-${registrationId}`,
    attestation: { type: "symmetricKey" },
    allocationPolicy: "custom",
    customAllocationDefinition: { webhookUrl: silentUrl, apiVersion: "2019-03-31" },
  } as unknown as EnrollmentGroup;
  const created = await serviceClient(p).createOrUpdateEnrollmentGroup(group);
  return deriveKey(created.responseBody.attestation.symmetricKey?.primaryKey ?? "", registrationId);
}

/** Register over HTTPS: answered "assigning" (the webhook hangs); resolves to the operation id. */
async function startRegistration(p: ProvisioProcess, registrationId: string, key: string): Promise<string> {
  const r = await call(p, "PUT", `/${p.info.idScope}/registrations/${registrationId}/register?api-version=2019-03-31`, {
    body: JSON.stringify({ registrationId }),
    auth: deviceToken(p, registrationId, key),
  });
  assert.equal(r.status, 202, r.text);
  return (r.json() as { operationId: string }).operationId;
}

async function poll(p: ProvisioProcess, registrationId: string, key: string, operationId: string) {
  const r = await call(
    p,
    "GET",
    `/${p.info.idScope}/registrations/${registrationId}/operations/${operationId}?api-version=2019-03-31`,
    { auth: deviceToken(p, registrationId, key) },
  );
  assert.equal(r.status === 200 || r.status === 202, true, r.text);
  return r.json() as { status: string; registrationState?: { errorCode?: number; errorMessage?: string } };
}

const settings = {
  PROVISIO_REGISTER_WAIT_MS: "0",
  PROVISIO_OPERATION_LEASE_MS: String(LEASE_MS),
  PROVISIO_WEBHOOK_TIMEOUT_MS: "600000",
};

describe("a killed node's registrations in progress", () => {
  test("on a cluster: the other node keeps answering assigning while the carrier lives, then fails them", async () => {
    const db = await createTestDatabase();
    const env = { ...settings, PROVISIO_DATABASE_URL: db.url, PROVISIO_MASTER_KEY: randomBytes(32).toString("hex") };
    const [a, b] = await Promise.all([startProvisio({ env }), startProvisio({ env })]);
    try {
      const key = await hangingDevice(a, "orphan-1");
      const operationId = await startRegistration(a, "orphan-1", key);
      // Alive: renewals keep the operation "assigning" well past one lease.
      await new Promise((r) => setTimeout(r, LEASE_MS * 2));
      assert.equal((await poll(b, "orphan-1", key, operationId)).status, "assigning");

      a.child.kill("SIGKILL");
      await once(a.child, "exit");
      const killedAt = Date.now();
      let op = await poll(b, "orphan-1", key, operationId);
      while (op.status === "assigning") {
        assert.ok(Date.now() - killedAt < LEASE_MS * 3, "the operation ended within the lease");
        await new Promise((r) => setTimeout(r, 100));
        op = await poll(b, "orphan-1", key, operationId);
      }
      assert.equal(op.status, "failed");
      assert.equal(op.registrationState?.errorCode, 500302);
      assert.match(op.registrationState?.errorMessage ?? "", /register again/);
      // Polled again (on either node) it stays failed.
      assert.equal((await poll(b, "orphan-1", key, operationId)).status, "failed");
    } finally {
      await Promise.all([a.dispose(), b.dispose()]);
      await db.drop();
    }
  });

  test("on one node with SQLite: after a restart the abandoned operation is failed, and the device registers again", async () => {
    const p = await startProvisio({ env: settings });
    let restarted: ProvisioProcess | undefined;
    try {
      const key = await hangingDevice(p, "orphan-2");
      const operationId = await startRegistration(p, "orphan-2", key);
      p.child.kill("SIGKILL");
      await once(p.child, "exit");
      restarted = await startProvisio({ dataDir: p.dataDir, env: settings });
      await new Promise((r) => setTimeout(r, LEASE_MS));
      const op = await poll(restarted, "orphan-2", key, operationId);
      assert.equal(op.status, "failed");
      assert.equal(op.registrationState?.errorCode, 500302);
    } finally {
      await restarted?.stop();
      await p.dispose();
    }
  });
});
