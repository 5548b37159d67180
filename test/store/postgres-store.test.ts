// The PostgreSQL store against a real PostgreSQL server (test/support/postgres.ts): the same
// conformance suite as SQLite, then what only a shared database has (migrations raced by several
// nodes, changes heard from another node).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import pg from "pg";
import { SecretBox } from "../../src/security/secret-box.js";
import { PG_LATEST_VERSION } from "../../src/store/postgres/pg-migrations.js";
import { openPostgresStore } from "../../src/store/postgres/pg-store.js";
import type { StoreChange } from "../../src/store/store-changes.js";
import { createTestDatabase } from "../support/postgres.js";
import { makeGroup, makeInstance, makePolicy, runStoreConformance, scopeOf } from "./store-conformance.js";

/** Every row of every table as text: what someone reading the database would see. */
async function dump(url: string): Promise<Buffer> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows: tables } = await c.query<{ name: string }>(
      "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'",
    );
    const parts: string[] = [];
    for (const { name } of tables) {
      const { rows } = await c.query<{ row: string }>(`SELECT t::text AS row FROM ${name} t`);
      for (const r of rows) parts.push(r.row);
    }
    return Buffer.from(parts.join("\n"));
  } finally {
    await c.end();
  }
}

runStoreConformance("PostgresStore", async () => {
  const db = await createTestDatabase();
  const box = new SecretBox(randomBytes(32));
  const store = await openPostgresStore(db.url, box);
  return {
    store,
    hubs: store.hubs,
    reopen: async () => openPostgresStore(db.url, box),
    rawBytes: () => dump(db.url),
    cleanup: () => db.drop(),
  };
});

describe("PostgresStore specifics", () => {
  test("nodes starting together migrate the schema once", async () => {
    const db = await createTestDatabase();
    try {
      const box = new SecretBox(randomBytes(32));
      const stores = await Promise.all([1, 2, 3].map(() => openPostgresStore(db.url, box)));
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      const { rows } = await c.query<{ version: number }>("SELECT version FROM provisio_schema ORDER BY version");
      await c.end();
      assert.deepEqual(
        rows.map((r) => r.version),
        Array.from({ length: PG_LATEST_VERSION }, (_, i) => i + 1),
      );
      await Promise.all(stores.map((s) => s.close()));
    } finally {
      await db.drop();
    }
  });

  test("a change written through one node is heard by the others, with the record read there", async () => {
    const db = await createTestDatabase();
    try {
      const box = new SecretBox(randomBytes(32));
      const [a, b] = [await openPostgresStore(db.url, box), await openPostgresStore(db.url, box)];
      const heard: StoreChange[] = [];
      const got = new Promise<void>((resolve) => {
        b.changes.subscribe((c) => {
          heard.push(c);
          if (heard.length === 2) resolve();
        });
      });
      const A = scopeOf(1);
      const instance = makeInstance(A, "alpha");
      await a.createInstance(instance, [makePolicy("owner")]);
      await a.putGroup(A, makeGroup("g1"));
      await got;
      assert.deepEqual(heard, [
        { kind: "instance", idScope: A, instance },
        { kind: "scope", idScope: A, what: "groups" },
      ]);
      await a.close();
      await b.close();
    } finally {
      await db.drop();
    }
  });

  test("a node that loses its listening connection re-reads everything once it is back", async () => {
    const db = await createTestDatabase();
    try {
      const box = new SecretBox(randomBytes(32));
      const store = await openPostgresStore(db.url, box);
      const resynced = new Promise<void>((resolve) => {
        store.changes.subscribe((c) => {
          if (c.kind === "resync") resolve();
        });
      });
      // Another session ends the listener's backend, as a database restart or failover would.
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      await c.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'",
      );
      await c.end();
      await resynced;
      await store.close();
    } finally {
      await db.drop();
    }
  });
});
