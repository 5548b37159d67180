// OperationStore on SQLite, sharing the database with SqliteStore.
import type Database from "better-sqlite3";
import type { IdScope } from "../../domain/ids.js";
import type { RegistrationOperation } from "../../domain/operation.js";
import { decodeOperation, encodeOperation, OK } from "../record-mappings.js";
import type { WriteResult } from "../records.js";

interface OperationRow {
  doc: string;
  carrier: string | null;
  carried_until: string | null;
}

type Args = [string, string, string, string, string | null, string | null];

export class SqliteOperationStore {
  readonly #get: Database.Statement<[string, string], OperationRow>;
  readonly #insert: Database.Statement<Args>;
  readonly #upsert: Database.Statement<Args>;
  readonly #renew: Database.Statement<[string, string]>;
  readonly #sweep: Database.Statement<[{ cutoff: string }]>;

  constructor(db: Database.Database) {
    this.#get = db.prepare(
      "SELECT doc, carrier, carried_until FROM operations WHERE id_scope = ? AND operation_id = ?",
    );
    const insert =
      "INSERT INTO operations (id_scope, operation_id, created, doc, carrier, carried_until) VALUES (?, ?, ?, ?, ?, ?)";
    this.#insert = db.prepare(`${insert} ON CONFLICT DO NOTHING`);
    this.#upsert = db.prepare(
      `${insert} ON CONFLICT (id_scope, operation_id) DO UPDATE SET doc = excluded.doc, carrier = excluded.carrier, carried_until = excluded.carried_until`,
    );
    this.#renew = db.prepare("UPDATE operations SET carried_until = ? WHERE carrier = ?");
    // A final operation has no carrier; one still carried stays until its carrier's lease ended.
    this.#sweep = db.prepare(
      "DELETE FROM operations WHERE created < @cutoff AND (carrier IS NULL OR carried_until < @cutoff)",
    );
  }

  get(idScope: IdScope, operationId: string): RegistrationOperation | undefined {
    const row = this.#get.get(idScope, operationId);
    return row && decodeOperation(row.doc, row.carrier, row.carried_until);
  }

  put(idScope: IdScope, op: RegistrationOperation, precondition?: { absent: true }): WriteResult {
    const { doc, carrier, until } = encodeOperation(op);
    const args: Args = [idScope, op.operationId, op.createdDateTimeUtc, doc, carrier, until];
    if (precondition?.absent) {
      return this.#insert.run(...args).changes === 1 ? OK : { ok: false, reason: "exists" };
    }
    this.#upsert.run(...args);
    return OK;
  }

  renew(node: string, until: string): void {
    this.#renew.run(until, node);
  }

  sweep(cutoff: string): number {
    return this.#sweep.run({ cutoff }).changes;
  }
}
