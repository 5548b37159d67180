// The PostgreSQL schema: the SQLite layout (../sqlite/migrations.ts) with the same tables and
// columns, so rows copy across unchanged. Keys are `COLLATE "C"` so paging order is byte order,
// as in SQLite. Plain types and standard constraints only, to stay portable to
// PostgreSQL-compatible distributed engines. Append new migrations; never edit a shipped one.
import type pg from "pg";
import { inTransaction } from "./pg-rows.js";

export interface PgMigration {
  version: number;
  sql: string;
}

export const PG_MIGRATIONS: readonly PgMigration[] = [
  {
    version: 1,
    sql: `
CREATE TABLE instances (
  id_scope TEXT COLLATE "C" NOT NULL PRIMARY KEY,
  name_key TEXT COLLATE "C" NOT NULL UNIQUE,
  host_key TEXT COLLATE "C" NOT NULL UNIQUE,
  etag TEXT NOT NULL,
  doc TEXT NOT NULL
);

CREATE TABLE access_policies (
  id_scope TEXT COLLATE "C" NOT NULL REFERENCES instances (id_scope) ON DELETE CASCADE,
  key TEXT COLLATE "C" NOT NULL,
  doc TEXT NOT NULL,
  sealed TEXT NOT NULL,
  PRIMARY KEY (id_scope, key)
);

CREATE TABLE linked_hubs (
  id_scope TEXT COLLATE "C" NOT NULL REFERENCES instances (id_scope) ON DELETE CASCADE,
  key TEXT COLLATE "C" NOT NULL,
  doc TEXT NOT NULL,
  sealed TEXT NOT NULL,
  PRIMARY KEY (id_scope, key)
);

CREATE TABLE ca_certificates (
  id_scope TEXT COLLATE "C" NOT NULL REFERENCES instances (id_scope) ON DELETE CASCADE,
  key TEXT COLLATE "C" NOT NULL,
  etag TEXT NOT NULL,
  doc TEXT NOT NULL,
  PRIMARY KEY (id_scope, key)
);

CREATE TABLE enrollments (
  id_scope TEXT COLLATE "C" NOT NULL REFERENCES instances (id_scope) ON DELETE CASCADE,
  key TEXT COLLATE "C" NOT NULL,
  etag TEXT NOT NULL,
  doc TEXT NOT NULL,
  sealed TEXT,
  PRIMARY KEY (id_scope, key)
);

CREATE TABLE enrollment_groups (
  id_scope TEXT COLLATE "C" NOT NULL REFERENCES instances (id_scope) ON DELETE CASCADE,
  key TEXT COLLATE "C" NOT NULL,
  etag TEXT NOT NULL,
  doc TEXT NOT NULL,
  sealed TEXT,
  PRIMARY KEY (id_scope, key)
);

CREATE TABLE registration_states (
  id_scope TEXT COLLATE "C" NOT NULL REFERENCES instances (id_scope) ON DELETE CASCADE,
  key TEXT COLLATE "C" NOT NULL,
  group_key TEXT COLLATE "C",
  etag TEXT NOT NULL,
  doc TEXT NOT NULL,
  PRIMARY KEY (id_scope, key)
);
CREATE INDEX registration_states_group ON registration_states (id_scope, group_key, key);

CREATE TABLE builtin_hubs (
  name_key TEXT COLLATE "C" NOT NULL PRIMARY KEY,
  doc TEXT NOT NULL,
  sealed TEXT NOT NULL
);

CREATE TABLE hub_devices (
  hub_key TEXT COLLATE "C" NOT NULL,
  device_id TEXT COLLATE "C" NOT NULL,
  row_version INTEGER NOT NULL,
  doc TEXT NOT NULL,
  sealed TEXT,
  PRIMARY KEY (hub_key, device_id)
);

CREATE TABLE operations (
  id_scope TEXT COLLATE "C" NOT NULL REFERENCES instances (id_scope) ON DELETE CASCADE,
  operation_id TEXT COLLATE "C" NOT NULL,
  created TEXT COLLATE "C" NOT NULL,
  doc TEXT NOT NULL,
  carrier TEXT COLLATE "C",
  carried_until TEXT COLLATE "C",
  PRIMARY KEY (id_scope, operation_id)
);
CREATE INDEX operations_created ON operations (created);
CREATE INDEX operations_carrier ON operations (carrier) WHERE carrier IS NOT NULL;

CREATE TABLE hub_intents (
  id_scope TEXT COLLATE "C" NOT NULL REFERENCES instances (id_scope) ON DELETE CASCADE,
  operation_id TEXT COLLATE "C" NOT NULL,
  registration_key TEXT COLLATE "C" NOT NULL,
  doc TEXT NOT NULL,
  carrier TEXT COLLATE "C" NOT NULL,
  carried_until TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (id_scope, operation_id)
);
-- A row lives only while its registration works: a handful, scanned, no secondary index to write.

CREATE TABLE tpm_challenges (
  id_scope TEXT COLLATE "C" NOT NULL REFERENCES instances (id_scope) ON DELETE CASCADE,
  registration_key TEXT COLLATE "C" NOT NULL,
  sealed TEXT NOT NULL,
  ek_hash TEXT NOT NULL,
  expires TEXT NOT NULL,
  PRIMARY KEY (id_scope, registration_key)
);

-- What the nodes of a cluster share besides records: the master-key check and the development CA.
CREATE TABLE shared_settings (
  name TEXT COLLATE "C" NOT NULL PRIMARY KEY,
  value TEXT NOT NULL
);

-- The registration rate limit of each provisioning service, one token bucket for the cluster.
CREATE TABLE rate_buckets (
  bucket TEXT COLLATE "C" NOT NULL PRIMARY KEY,
  tokens DOUBLE PRECISION NOT NULL,
  at TIMESTAMPTZ NOT NULL,
  granted BOOLEAN NOT NULL
);
`,
  },
  {
    version: 2,
    // The audit trail, as in SQLite (migration 7 there).
    sql: `
CREATE TABLE audit_events (
  seq BIGSERIAL PRIMARY KEY,
  at TEXT COLLATE "C" NOT NULL,
  service TEXT COLLATE "C" NOT NULL,
  caller_name TEXT COLLATE "C" NOT NULL,
  doc TEXT NOT NULL
);
CREATE INDEX audit_events_by_service ON audit_events (service, seq);
`,
  },
  {
    version: 3,
    // Refused register calls, as in SQLite (migration 8 there).
    sql: `
CREATE TABLE refused_attempts (
  seq BIGSERIAL PRIMARY KEY,
  id_scope TEXT COLLATE "C" NOT NULL REFERENCES instances (id_scope) ON DELETE CASCADE,
  registration_key TEXT COLLATE "C" NOT NULL,
  at TEXT COLLATE "C" NOT NULL,
  doc TEXT NOT NULL
);
CREATE INDEX refused_attempts_by_device ON refused_attempts (id_scope, registration_key, seq);
`,
  },
];

export const PG_LATEST_VERSION = PG_MIGRATIONS.reduce((v, m) => Math.max(v, m.version), 0);

// Any constant both nodes agree on: the lock only serialises Provisio's own migrations.
const MIGRATION_LOCK = 0x70726f76; // "prov"

/**
 * Brings the schema up to date. Nodes starting together take turns on an advisory lock, so the
 * migrations run once whichever node is first; each runs in a transaction with its version bump.
 */
export async function migratePostgres(client: pg.ClientBase): Promise<number> {
  await client.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK]);
  try {
    await client.query("CREATE TABLE IF NOT EXISTS provisio_schema (version INTEGER NOT NULL)");
    const { rows } = await client.query<{ version: number }>("SELECT max(version) AS version FROM provisio_schema");
    const current = rows[0]?.version ?? 0;
    if (current > PG_LATEST_VERSION) {
      throw new Error(
        `The database schema is version ${current}, newer than this build understands (${PG_LATEST_VERSION}); upgrade provisio.`,
      );
    }
    for (const m of PG_MIGRATIONS) {
      if (m.version <= current) continue;
      await inTransaction(client, async () => {
        await client.query(m.sql);
        await client.query("INSERT INTO provisio_schema (version) VALUES ($1)", [m.version]);
      });
    }
    return PG_LATEST_VERSION;
  } finally {
    await client.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK]);
  }
}
