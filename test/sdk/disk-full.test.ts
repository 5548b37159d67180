// A full disk under a running server (issue "Reliability under faults" 7): a write that cannot be
// stored is a clear 503 with a Retry-After, nothing acknowledged is lost, and the server recovers
// by itself when the disk takes writes again. The data directory is a small tmpfs this test
// mounts (it needs root, as CI runs). A read-only disk cannot be made under open files (the
// remount is refused as busy); its SQLite and PostgreSQL codes map to the same 503
// (test/unit/storage-errors.test.ts).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { deviceToken, enrollIndividual } from "../support/enrollments.js";
import { call } from "../support/management.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { serviceClient } from "../support/service-client.js";

/** Whether this machine lets the test mount a tmpfs (root with the right to mount, as in CI). */
function canMount(): boolean {
  if (process.getuid?.() !== 0) return false;
  const probe = mkdtempSync(join(tmpdir(), "provisio-mount-probe-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", probe], { stdio: "ignore" });
    execFileSync("umount", [probe], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

/** Writes zeros into `file` until the file system is full. */
function fill(file: string): void {
  const fd = openSync(file, "w");
  const chunk = Buffer.alloc(256 * 1024);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOSPC") throw e;
  } finally {
    closeSync(fd);
  }
}

describe("a full disk", {
  skip: canMount() ? false : "mounting a small tmpfs needs root with the right to mount",
}, () => {
  let mountPoint: string;
  let p: ProvisioProcess;
  const keys = new Map<string, string>();

  const register = (id: string) =>
    call(p, "PUT", `/${p.info.idScope}/registrations/${id}/register?api-version=2019-03-31`, {
      body: JSON.stringify({ registrationId: id }),
      auth: deviceToken(p, id, keys.get(id) ?? ""),
    });

  before(async () => {
    mountPoint = mkdtempSync(join(tmpdir(), "provisio-small-disk-"));
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=24m", "tmpfs", mountPoint]);
    p = await startProvisio({ dataDir: join(mountPoint, "data") });
    for (const id of ["kept", "full-1"]) keys.set(id, await enrollIndividual(serviceClient(p), id));
    assert.equal((await register("kept")).status, 200);
  });
  after(async () => {
    await p?.stop();
    execFileSync("umount", [mountPoint]);
    rmSync(mountPoint, { recursive: true, force: true });
  });

  const assertUnavailable = (r: { status: number; headers: Record<string, unknown>; json(): unknown }) => {
    assert.equal(r.status, 503, JSON.stringify(r.json()));
    assert.equal(r.headers["retry-after"], "5");
    const body = r.json() as { errorCode: number; message: string };
    assert.equal(body.errorCode, 503001);
    assert.match(body.message, /cannot write its records right now/);
  };

  test("disk full: registrations and service writes are 503 + Retry-After, reads still work, and it recovers", async () => {
    const filler = join(mountPoint, "filler");
    fill(filler);
    try {
      assertUnavailable(await register("full-1"));
      const put = await call(p, "PUT", "/enrollments/full-2?api-version=2021-10-01", {
        body: JSON.stringify({ registrationId: "full-2", attestation: { type: "symmetricKey" } }),
      });
      assertUnavailable(put);
      const kept = await call(p, "GET", "/registrations/kept?api-version=2021-10-01");
      assert.equal(kept.status, 200, "what was acknowledged is still there");
    } finally {
      rmSync(filler);
    }
    const again = await register("full-1");
    assert.equal(again.status, 200, again.text);
    assert.equal((again.json() as { status: string }).status, "assigned");
  });
});
