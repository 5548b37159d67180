// OperationStore on SQLite, sharing the database with SqliteStore.
import type Database from "better-sqlite3";
import type { IdScope } from "../../domain/ids.js";
import type { RegistrationOperation } from "../../domain/operation.js";
import { OK } from "../record-mappings.js";
import type { WriteResult } from "../records.js";

export class SqliteOperationStore {
  readonly #get: Database.Statement<[string, string], { doc: string }>;
  readonly #insert: Database.Statement<[string, string, string, string]>;
  readonly #upsert: Database.Statement<[string, string, string, string]>;
  readonly #sweep: Database.Statement<[string]>;

  constructor(db: Database.Database) {
    this.#get = db.prepare("SELECT doc FROM operations WHERE id_scope = ? AND operation_id = ?");
    this.#insert = db.prepare(
      "INSERT INTO operations (id_scope, operation_id, created, doc) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
    );
    this.#upsert = db.prepare(
      "INSERT INTO operations (id_scope, operation_id, created, doc) VALUES (?, ?, ?, ?) ON CONFLICT (id_scope, operation_id) DO UPDATE SET doc = excluded.doc",
    );
    this.#sweep = db.prepare("DELETE FROM operations WHERE created < ?");
  }

  get(idScope: IdScope, operationId: string): RegistrationOperation | undefined {
    const row = this.#get.get(idScope, operationId);
    return row && (JSON.parse(row.doc) as RegistrationOperation);
  }

  put(idScope: IdScope, op: RegistrationOperation, precondition?: { absent: true }): WriteResult {
    const args = [idScope, op.operationId, op.createdDateTimeUtc, JSON.stringify(op)] as const;
    if (precondition?.absent) {
      return this.#insert.run(...args).changes === 1 ? OK : { ok: false, reason: "exists" };
    }
    this.#upsert.run(...args);
    return OK;
  }

  sweep(cutoff: string): number {
    return this.#sweep.run(cutoff).changes;
  }
}
