import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import Database from "better-sqlite3";
import { SecretBox } from "../../src/security/secret-box.js";
import { LATEST_VERSION } from "../../src/store/sqlite/migrations.js";
import { openSqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { makeEnrollment, makeInstance, makePolicy, runStoreConformance, scopeOf } from "./store-conformance.js";

const tempDb = (): { dir: string; file: string } => {
  const dir = mkdtempSync(join(tmpdir(), "provisio-sqlite-"));
  return { dir, file: join(dir, "provisio.db") };
};

runStoreConformance("SqliteStore", async () => {
  const { dir, file } = tempDb();
  const box = new SecretBox(randomBytes(32));
  const store = openSqliteStore(file, box);
  return {
    store,
    hubs: store.hubs,
    reopen: async () => openSqliteStore(file, box),
    rawBytes: () =>
      Buffer.concat([file, `${file}-wal`, `${file}-journal`].filter((f) => existsSync(f)).map((f) => readFileSync(f))),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
});

const userVersion = (file: string): unknown => {
  const db = new Database(file, { readonly: true });
  try {
    return db.pragma("user_version", { simple: true });
  } finally {
    db.close();
  }
};

describe("SqliteStore specifics", () => {
  test("swept operations give their space back to the file system", async () => {
    const { dir, file } = tempDb();
    try {
      const A = scopeOf(1);
      const store = openSqliteStore(file, new SecretBox(randomBytes(32)));
      await store.createInstance(makeInstance(A, "alpha"), [makePolicy("owner")]);
      const payload = "x".repeat(800);
      for (let i = 0; i < 3000; i++) {
        await store.putOperation(A, {
          operationId: `4.${i}.op`,
          registrationId: `dev-${i}`,
          status: "assigned",
          registrationState: { registrationId: `dev-${i}`, status: "assigned", payload },
          createdDateTimeUtc: "2020-01-01T00:00:00.000Z",
        });
      }
      const full = await store.sizeBytes();
      assert.equal(await store.deleteOperationsBefore("2025-01-01T00:00:00.000Z"), 3000);
      const db = new Database(file);
      db.pragma("wal_checkpoint(TRUNCATE)");
      db.close();
      const after = await store.sizeBytes();
      assert.ok(after < full / 2, `the database shrank: ${full} -> ${after} bytes`);
      await store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a wrong master key gives a clear error when a secret is read", async () => {
    const { dir, file } = tempDb();
    try {
      const A = scopeOf(1);
      const store = openSqliteStore(file, new SecretBox(randomBytes(32)));
      await store.createInstance(makeInstance(A, "alpha"), [makePolicy("owner")]);
      await store.putEnrollment(A, makeEnrollment("dev-1"));
      await store.close();

      const wrong = openSqliteStore(file, new SecretBox(randomBytes(32)));
      try {
        // Records without secrets still read.
        assert.equal((await wrong.getInstance(A))?.name, "alpha");
        await assert.rejects(wrong.getEnrollment(A, "dev-1"), /enrollment 'dev-1' of instance 0ne00000001.*master key/);
        await assert.rejects(wrong.listPolicies(A), /access policy 'owner'.*master key/);
      } finally {
        await wrong.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("migrations run once and are idempotent on reopen", async () => {
    const { dir, file } = tempDb();
    try {
      const box = new SecretBox(randomBytes(32));
      const A = scopeOf(1);
      const first = openSqliteStore(file, box);
      await first.createInstance(makeInstance(A, "alpha"), []);
      await first.close();
      assert.equal(userVersion(file), LATEST_VERSION);

      const second = openSqliteStore(file, box);
      assert.equal((await second.getInstance(A))?.name, "alpha");
      await second.close();
      assert.equal(userVersion(file), LATEST_VERSION);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a database from a newer schema version is refused", () => {
    const { dir, file } = tempDb();
    try {
      const db = new Database(file);
      db.pragma(`user_version = ${LATEST_VERSION + 1}`);
      db.close();
      assert.throws(() => openSqliteStore(file, new SecretBox(randomBytes(32))), /newer than this build/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the database file is in WAL mode", async () => {
    const { dir, file } = tempDb();
    try {
      const store = openSqliteStore(file, new SecretBox(randomBytes(32)));
      await store.close();
      const db = new Database(file, { readonly: true });
      try {
        assert.equal(db.pragma("journal_mode", { simple: true }), "wal");
      } finally {
        db.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
