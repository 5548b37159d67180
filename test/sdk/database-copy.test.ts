// Moving up (issue "PostgreSQL and several nodes"): `provisio database copy` takes a SQLite data
// directory into PostgreSQL, and a node on that database is the same service to real clients.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { httpTransport, registerWithKey } from "../support/device-clients.js";
import { enrollIndividual } from "../support/enrollments.js";
import { createTestDatabase } from "../support/postgres.js";
import { BIN, startProvisio } from "../support/provisio-process.js";
import { serviceClient } from "../support/service-client.js";

const run = promisify(execFile);

test("a SQLite data directory copied into PostgreSQL keeps the service, its keys, CA and registrations", async () => {
  const db = await createTestDatabase();
  const before = await startProvisio();
  try {
    const key = await enrollIndividual(serviceClient(before), "moved-dev");
    const first = await registerWithKey(before, httpTransport(before), "moved-dev", key);
    assert.equal(first.status, "assigned");
    await before.stop();

    const copy = ["database", "copy", "--data-dir", before.dataDir, "--database-url", db.url];
    const { stdout } = await run(process.execPath, [BIN, ...copy]);
    const report = JSON.parse(stdout) as { copied: Record<string, number>; developmentCa: boolean };
    assert.equal(report.copied.instances, 1);
    assert.equal(report.copied.enrollments, 1);
    assert.equal(report.copied.registration_states, 1);
    assert.equal(report.developmentCa, true);

    // Into a database that is not empty: refused, nothing written.
    await assert.rejects(run(process.execPath, [BIN, ...copy]), /already holds provisioning service instances/);

    const masterKey = readFileSync(join(before.dataDir, "master.key"), "utf8").trim();
    const after = await startProvisio({ env: { PROVISIO_DATABASE_URL: db.url, PROVISIO_MASTER_KEY: masterKey } });
    try {
      assert.equal(after.info.idScope, before.info.idScope);
      assert.equal(after.info.serviceConnectionString, before.info.serviceConnectionString);
      assert.deepEqual(after.info.hubs, before.info.hubs);
      assert.equal(after.ca.toString(), before.ca.toString(), "devices keep trusting the same CA");
      const state = await serviceClient(after).getDeviceRegistrationState("moved-dev");
      assert.equal(state.responseBody.deviceId, first.deviceId);
      const again = await registerWithKey(after, httpTransport(after), "moved-dev", key);
      assert.equal(again.status, "assigned");
      assert.equal(again.assignedHub, first.assignedHub);
    } finally {
      await after.dispose();
    }
  } finally {
    rmSync(before.dataDir, { recursive: true, force: true });
    await db.drop();
  }
});
