// `provisio database backup` while the server registers devices, and the restore the README
// documents (issue "Reliability under faults" 6).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { deriveKey, httpTransport, registerWithKey } from "../support/device-clients.js";
import { enrollGroup, enrollIndividual } from "../support/enrollments.js";
import { BIN, newDataDir, startProvisio } from "../support/provisio-process.js";
import { serviceClient } from "../support/service-client.js";

const run = promisify(execFile);

test("an online backup restores to the same service, with what was registered before it", async () => {
  const p = await startProvisio();
  const backupDir = join(mkdtempSync(join(tmpdir(), "provisio-backup-")), "backup");
  const restored = newDataDir();
  try {
    const key = await enrollIndividual(serviceClient(p), "kept-dev");
    assert.equal((await registerWithKey(p, httpTransport(p), "kept-dev", key)).status, "assigned");
    // Devices keep registering while the backup runs.
    const groupKey = await enrollGroup(serviceClient(p), "busy-group");
    let busy = true;
    const load = (async () => {
      for (let i = 0; busy; i++) {
        const id = `busy-${i}`;
        await registerWithKey(p, httpTransport(p), id, deriveKey(groupKey, id));
      }
    })();
    const { stdout } = await run(process.execPath, [
      BIN,
      "database",
      "backup",
      "--data-dir",
      p.dataDir,
      "--to",
      backupDir,
    ]);
    busy = false;
    await load;
    const report = JSON.parse(stdout) as { files: string[] };
    assert.deepEqual(report.files, ["provisio.db", "tls/ca.pem", "tls/ca.key"]);
    await assert.rejects(
      run(process.execPath, [BIN, "database", "backup", "--data-dir", p.dataDir, "--to", backupDir]),
      /not empty/,
    );
    await p.stop();

    // The restore: the backup's files into a data directory, with the master key kept apart.
    mkdirSync(join(restored, "tls"), { recursive: true });
    copyFileSync(join(backupDir, "provisio.db"), join(restored, "provisio.db"));
    for (const f of ["ca.pem", "ca.key"]) copyFileSync(join(backupDir, "tls", f), join(restored, "tls", f));
    copyFileSync(join(p.dataDir, "master.key"), join(restored, "master.key"));
    const q = await startProvisio({ dataDir: restored });
    try {
      assert.equal(q.info.idScope, p.info.idScope);
      assert.equal(q.info.serviceConnectionString, p.info.serviceConnectionString);
      assert.equal(q.ca.toString(), readFileSync(join(backupDir, "tls", "ca.pem"), "utf8"));
      const state = (await serviceClient(q).getDeviceRegistrationState("kept-dev")).responseBody;
      assert.equal(state.status, "assigned");
      assert.equal((await registerWithKey(q, httpTransport(q), "kept-dev", key)).status, "assigned");
    } finally {
      await q.dispose();
    }
  } finally {
    await p.dispose();
    rmSync(join(backupDir, ".."), { recursive: true, force: true });
  }
});
