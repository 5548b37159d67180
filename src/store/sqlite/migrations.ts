// Versioned schema migrations, tracked with `PRAGMA user_version`. Append new migrations; never
// edit one that has shipped. The SQL stays portable (plain TEXT columns, standard constraints,
// `INSERT ... ON CONFLICT` in the store) so the PostgreSQL store can share the schema; there,
// `key` columns need `COLLATE "C"` so paging order matches SQLite's byte order.
//
// Layout: every record is a JSON document (`doc`) plus the columns lookups and paging need.
// `key` is the lower-cased id (ids are case-insensitive), computed by the application, not by
// SQL `lower()`, so both databases agree on it. `sealed` holds the record's secrets encrypted by
// the SecretBox; they never appear in `doc`.
import type Database from "better-sqlite3";

export interface Migration {
  version: number;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: `
CREATE TABLE instances (
  id_scope TEXT NOT NULL PRIMARY KEY,
  name_key TEXT NOT NULL,
  host_key TEXT NOT NULL,
  etag TEXT NOT NULL,
  doc TEXT NOT NULL
);
CREATE UNIQUE INDEX instances_name_key ON instances (name_key);
CREATE UNIQUE INDEX instances_host_key ON instances (host_key);

CREATE TABLE access_policies (
  id_scope TEXT NOT NULL REFERENCES instances (id_scope) ON DELETE CASCADE,
  key TEXT NOT NULL,
  doc TEXT NOT NULL,
  sealed TEXT NOT NULL,
  PRIMARY KEY (id_scope, key)
);

CREATE TABLE linked_hubs (
  id_scope TEXT NOT NULL REFERENCES instances (id_scope) ON DELETE CASCADE,
  key TEXT NOT NULL,
  doc TEXT NOT NULL,
  sealed TEXT NOT NULL,
  PRIMARY KEY (id_scope, key)
);

CREATE TABLE ca_certificates (
  id_scope TEXT NOT NULL REFERENCES instances (id_scope) ON DELETE CASCADE,
  key TEXT NOT NULL,
  etag TEXT NOT NULL,
  doc TEXT NOT NULL,
  PRIMARY KEY (id_scope, key)
);

CREATE TABLE enrollments (
  id_scope TEXT NOT NULL REFERENCES instances (id_scope) ON DELETE CASCADE,
  key TEXT NOT NULL,
  etag TEXT NOT NULL,
  doc TEXT NOT NULL,
  sealed TEXT,
  PRIMARY KEY (id_scope, key)
);

CREATE TABLE enrollment_groups (
  id_scope TEXT NOT NULL REFERENCES instances (id_scope) ON DELETE CASCADE,
  key TEXT NOT NULL,
  etag TEXT NOT NULL,
  doc TEXT NOT NULL,
  sealed TEXT,
  PRIMARY KEY (id_scope, key)
);

CREATE TABLE registration_states (
  id_scope TEXT NOT NULL REFERENCES instances (id_scope) ON DELETE CASCADE,
  key TEXT NOT NULL,
  group_key TEXT,
  etag TEXT NOT NULL,
  doc TEXT NOT NULL,
  PRIMARY KEY (id_scope, key)
);
-- The registration query of a group pages by key within (scope, group).
CREATE INDEX registration_states_group ON registration_states (id_scope, group_key, key);
`,
  },
  {
    version: 2,
    // The built-in hubs: configuration (policy keys sealed) and devices. Device ids are
    // case-sensitive, so device_id is the id itself, not a lower-cased key.
    sql: `
CREATE TABLE builtin_hubs (
  name_key TEXT NOT NULL PRIMARY KEY,
  doc TEXT NOT NULL,
  sealed TEXT NOT NULL
);

CREATE TABLE hub_devices (
  hub_key TEXT NOT NULL,
  device_id TEXT NOT NULL,
  row_version INTEGER NOT NULL,
  doc TEXT NOT NULL,
  sealed TEXT,
  PRIMARY KEY (hub_key, device_id)
);
`,
  },
  {
    version: 3,
    // Registration operations: written when a register call returns before the work is done, and
    // with the final result; polled by id. Old ones are swept by created time.
    sql: `
CREATE TABLE operations (
  id_scope TEXT NOT NULL REFERENCES instances (id_scope) ON DELETE CASCADE,
  operation_id TEXT NOT NULL,
  created TEXT NOT NULL,
  doc TEXT NOT NULL,
  PRIMARY KEY (id_scope, operation_id)
);
CREATE INDEX operations_created ON operations (created);
`,
  },
  {
    version: 4,
    // TPM challenges (tpm-attestation.md §3): one pending a device, its key sealed.
    sql: `
CREATE TABLE tpm_challenges (
  id_scope TEXT NOT NULL REFERENCES instances (id_scope) ON DELETE CASCADE,
  registration_key TEXT NOT NULL,
  sealed TEXT NOT NULL,
  ek_hash TEXT NOT NULL,
  expires TEXT NOT NULL,
  PRIMARY KEY (id_scope, registration_key)
);
`,
  },
  {
    version: 5,
    // Operations in progress name the node carrying them and how long its lease runs (renewed
    // while it lives); a final result clears both.
    sql: `
ALTER TABLE operations ADD COLUMN carrier TEXT;
ALTER TABLE operations ADD COLUMN carried_until TEXT;
CREATE INDEX operations_carrier ON operations (carrier) WHERE carrier IS NOT NULL;
`,
  },
  {
    version: 6,
    // Hub intents: what a registration is about to do to the hubs, written before its first hub
    // write and settled with the record (domain/hub-intent.ts). A row lives only while its
    // registration works, so the table holds a handful: no secondary index (each would cost page
    // writes on every registration, bench/), and WITHOUT ROWID keeps a write to one B-tree.
    sql: `
CREATE TABLE hub_intents (
  id_scope TEXT NOT NULL REFERENCES instances (id_scope) ON DELETE CASCADE,
  operation_id TEXT NOT NULL,
  registration_key TEXT NOT NULL,
  doc TEXT NOT NULL,
  carrier TEXT NOT NULL,
  carried_until TEXT NOT NULL,
  PRIMARY KEY (id_scope, operation_id)
) WITHOUT ROWID;
`,
  },
  {
    version: 7,
    // The audit trail: appended to, read newest first per provisioning service. `seq` orders it
    // (AUTOINCREMENT: never reused after a trim, so paging cursors stay valid).
    sql: `
CREATE TABLE audit_events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  at TEXT NOT NULL,
  service TEXT NOT NULL,
  caller_name TEXT NOT NULL,
  doc TEXT NOT NULL
);
CREATE INDEX audit_events_by_service ON audit_events (service, seq);
`,
  },
  {
    version: 8,
    // Register calls refused before any work, to explain them (domain/attempt.ts): insert-only,
    // read per device newest first, trimmed by age and count.
    sql: `
CREATE TABLE refused_attempts (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id_scope TEXT NOT NULL REFERENCES instances (id_scope) ON DELETE CASCADE,
  registration_key TEXT NOT NULL,
  at TEXT NOT NULL,
  doc TEXT NOT NULL
);
CREATE INDEX refused_attempts_by_device ON refused_attempts (id_scope, registration_key, seq);
`,
  },
];

/** The schema version this code writes. */
export const LATEST_VERSION = MIGRATIONS.reduce((v, m) => Math.max(v, m.version), 0);

/** Applies pending migrations, each in its own transaction together with its version bump. */
export function migrate(db: Database.Database): number {
  const current = db.pragma("user_version", { simple: true });
  if (typeof current !== "number") throw new Error("Could not read the database schema version.");
  if (current > LATEST_VERSION) {
    throw new Error(
      `The database schema is version ${current}, newer than this build understands (${LATEST_VERSION}); upgrade provisio.`,
    );
  }
  for (const m of MIGRATIONS) {
    if (m.version <= current) continue;
    // user_version lives in the database header, so it commits or rolls back with the DDL.
    db.transaction(() => {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    }).immediate();
  }
  return LATEST_VERSION;
}
