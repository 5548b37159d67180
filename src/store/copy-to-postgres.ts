// Moving up: a SQLite data directory's records copied into an empty PostgreSQL database, so a user
// who started on one machine keeps enrollments, keys, registrations, built-in hubs and the
// development CA when several nodes take over. Both stores write the same columns and seal with
// the same master key (record-mappings.ts), so rows move as they are, in one transaction: the
// copy is whole or nothing.
import Database from "better-sqlite3";
import pg from "pg";
import type { SecretBox } from "../security/secret-box.js";
import { migratePostgres } from "./postgres/pg-migrations.js";
import { inTransaction } from "./postgres/pg-rows.js";

/** Every table of the SQLite schema, parents before children (foreign keys). */
const TABLES = [
  "instances",
  "access_policies",
  "linked_hubs",
  "ca_certificates",
  "enrollments",
  "enrollment_groups",
  "registration_states",
  "builtin_hubs",
  "hub_devices",
  "operations",
  "tpm_challenges",
  "audit_events",
  "refused_attempts",
] as const;

const BATCH = 500;

export type CopyCounts = Record<(typeof TABLES)[number], number>;

export async function copySqliteToPostgres(
  sqliteFile: string,
  databaseUrl: string,
  secrets: SecretBox,
  developmentCa: { certPem: string; keyPem: string } | undefined,
): Promise<CopyCounts> {
  const source = new Database(sqliteFile, { readonly: true, fileMustExist: true });
  const target = new pg.Client({ connectionString: databaseUrl });
  await target.connect();
  try {
    await migratePostgres(target);
    return await inTransaction(target, async () => {
      const { rows } = await target.query<{ n: number }>("SELECT count(*)::int AS n FROM instances");
      if ((rows[0]?.n ?? 0) > 0) {
        throw new Error(
          "The PostgreSQL database already holds provisioning service instances; copy into an empty database.",
        );
      }
      const counts = {} as CopyCounts;
      // One read transaction: the copy is one consistent version even while a server writes.
      const read = source.transaction(() => TABLES.map((t) => source.prepare(`SELECT * FROM ${t}`).all()));
      const all = read() as Record<string, unknown>[][];
      for (const [i, table] of TABLES.entries()) {
        const rows = all[i] ?? [];
        counts[table] = rows.length;
        for (let start = 0; start < rows.length; start += BATCH) {
          await insertRows(target, table, rows.slice(start, start + BATCH));
        }
      }
      // The audit trail and refused attempts keep their numbers; the sequences continue after them.
      for (const table of ["audit_events", "refused_attempts"]) {
        await target.query(
          `SELECT setval(pg_get_serial_sequence('${table}', 'seq'), GREATEST((SELECT max(seq) FROM ${table}), 1))`,
        );
      }
      // The shared settings a cluster's first node would otherwise create: the master-key check,
      // sealed with the key these rows were sealed with, and the data directory's CA.
      const shared: [string, string][] = [["master-key-check", secrets.seal("provisio")]];
      if (developmentCa) shared.push(["development-ca", secrets.seal(JSON.stringify(developmentCa))]);
      for (const [name, value] of shared) {
        await target.query(
          "INSERT INTO shared_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
          [name, value],
        );
      }
      return counts;
    });
  } finally {
    source.close();
    await target.end();
  }
}

async function insertRows(target: pg.Client, table: string, rows: Record<string, unknown>[]): Promise<void> {
  const first = rows[0];
  if (!first) return;
  const columns = Object.keys(first);
  const values: unknown[] = [];
  const tuples = rows.map((row) => {
    const marks = columns.map((c) => {
      values.push(row[c]);
      return `$${values.length}`;
    });
    return `(${marks.join(", ")})`;
  });
  await target.query(`INSERT INTO ${table} (${columns.join(", ")}) VALUES ${tuples.join(", ")}`, values);
}
