// Generic row access for the SQLite store: one record type per table, scoped by instance, the
// record as a JSON `doc` plus mapped columns (record-mappings.ts); VersionedRows adds etag
// preconditions.
import Database from "better-sqlite3";
import { idKey } from "../../domain/ids.js";
import type { RegistrationRecord } from "../../domain/registration-state.js";
import {
  bareEtag,
  type Columns,
  checkLimit,
  type Mapping,
  OK,
  pageOf,
  refused,
  registrationMapping,
  unreadable,
} from "../record-mappings.js";
import type { Page, PageRequest, Precondition, WriteResult } from "../records.js";

export interface StoredRow {
  key: string;
  doc: string;
  sealed: string | null;
}

/** The rows of one record table, scoped by instance. */
export class Rows<T> {
  protected readonly m: Mapping<T>;
  readonly #get: Database.Statement<[string, string], StoredRow>;
  readonly #all: Database.Statement<[string], StoredRow>;
  readonly #page: Database.Statement<[string, string, number], StoredRow>;
  readonly #upsert: Database.Statement<[Columns]>;
  readonly #deleteScope: Database.Statement<[string]>;

  constructor(db: Database.Database, m: Mapping<T>) {
    this.m = m;
    const t = m.table;
    const select = `SELECT key, doc, ${m.extra.includes("sealed") ? "sealed" : "NULL AS sealed"} FROM ${t}`;
    this.#get = db.prepare(`${select} WHERE id_scope = ? AND key = ?`);
    this.#all = db.prepare(`${select} WHERE id_scope = ? ORDER BY key`);
    // All keys are non-empty, so after = "" starts at the beginning.
    this.#page = db.prepare(`${select} WHERE id_scope = ? AND key > ? ORDER BY key LIMIT ?`);
    const cols = ["doc", ...m.extra];
    this.#upsert = db.prepare(
      `INSERT INTO ${t} (id_scope, key, ${cols.join(", ")}) VALUES (@id_scope, @key, ${cols.map((c) => `@${c}`).join(", ")})
       ON CONFLICT (id_scope, key) DO UPDATE SET ${cols.map((c) => `${c} = excluded.${c}`).join(", ")}`,
    );
    this.#deleteScope = db.prepare(`DELETE FROM ${t} WHERE id_scope = ?`);
  }

  get(scope: string, id: string): T | undefined {
    const row = this.#get.get(scope, idKey(id));
    return row && this.decode(scope, row);
  }

  all(scope: string): T[] {
    return this.#all.all(scope).map((row) => this.decode(scope, row));
  }

  page(scope: string, page: PageRequest): Page<T> {
    checkLimit(page.limit);
    return this.toPage(scope, this.#page.all(scope, page.after ?? "", page.limit + 1), page.limit);
  }

  /** Replaces every row of the scope; call inside a transaction. */
  replaceAll(scope: string, records: readonly T[]): void {
    this.#deleteScope.run(scope);
    for (const r of records) this.upsert(scope, r);
  }

  /** Writes `r` whatever is stored: alone, or as one step of a caller's transaction. */
  upsert(scope: string, r: T): void {
    try {
      this.#upsert.run({ id_scope: scope, key: this.m.key(r), ...this.m.encode(r) });
    } catch (e) {
      if (e instanceof Database.SqliteError && e.code === "SQLITE_CONSTRAINT_FOREIGNKEY") {
        throw new Error(`Cannot store ${this.m.noun} '${this.m.key(r)}': instance ${scope} does not exist.`, {
          cause: e,
        });
      }
      throw e;
    }
  }

  /** The first `limit` rows of `rows` (fetched with limit + 1) as a page. */
  protected toPage(scope: string, rows: StoredRow[], limit: number): Page<T> {
    return pageOf(
      rows,
      limit,
      (row) => row.key,
      (row) => this.decode(scope, row),
    );
  }

  protected decode(scope: string, row: StoredRow): T {
    try {
      return this.m.decode(row.doc, row.sealed);
    } catch (e) {
      throw unreadable(this.m.noun, row.key, scope, e);
    }
  }
}

/**
 * Rows with an etag. A conditional write compares the expected etag in the write statement
 * itself (`UPDATE … WHERE etag = ?`, `INSERT … ON CONFLICT DO NOTHING`), the same style as every
 * other conditional write of the stores: no read-then-write window to guard.
 */
export class VersionedRows<T> extends Rows<T> {
  readonly #exists: Database.Statement<[string, string], { n: number }>;
  readonly #insert: Database.Statement<[Columns]>;
  readonly #update: Database.Statement<[Columns]>;
  readonly #updateIf: Database.Statement<[Columns]>;
  readonly #delete: Database.Statement<[string, string]>;
  readonly #deleteIf: Database.Statement<[string, string, string]>;

  constructor(db: Database.Database, m: Mapping<T>) {
    super(db, m);
    const t = m.table;
    const cols = ["doc", ...m.extra];
    const set = cols.map((c) => `${c} = @${c}`).join(", ");
    this.#exists = db.prepare(`SELECT 1 AS n FROM ${t} WHERE id_scope = ? AND key = ?`);
    this.#insert = db.prepare(
      `INSERT INTO ${t} (id_scope, key, ${cols.join(", ")}) VALUES (@id_scope, @key, ${cols.map((c) => `@${c}`).join(", ")})
       ON CONFLICT (id_scope, key) DO NOTHING`,
    );
    this.#update = db.prepare(`UPDATE ${t} SET ${set} WHERE id_scope = @id_scope AND key = @key`);
    this.#updateIf = db.prepare(
      `UPDATE ${t} SET ${set} WHERE id_scope = @id_scope AND key = @key AND etag = @expected`,
    );
    this.#delete = db.prepare(`DELETE FROM ${t} WHERE id_scope = ? AND key = ?`);
    this.#deleteIf = db.prepare(`DELETE FROM ${t} WHERE id_scope = ? AND key = ? AND etag = ?`);
  }

  put(scope: string, r: T, pre: Precondition): WriteResult {
    if (pre === undefined) {
      this.upsert(scope, r);
      return OK;
    }
    const columns: Columns = { id_scope: scope, key: this.m.key(r), ...this.m.encode(r) };
    if ("absent" in pre) return this.guard(() => this.#insert.run(columns).changes) === 1 ? OK : refused("exists");
    const expected = bareEtag(pre.etag);
    const changed =
      expected === "*"
        ? this.guard(() => this.#update.run(columns).changes)
        : this.guard(() => this.#updateIf.run({ ...columns, expected }).changes);
    return changed === 1 ? OK : this.whyNot(scope, columns.key as string);
  }

  remove(scope: string, id: string, pre: Precondition): WriteResult {
    const key = idKey(id);
    if (pre !== undefined && "absent" in pre) return refused(this.#exists.get(scope, key) ? "exists" : "missing");
    const expected = pre === undefined ? "*" : bareEtag(pre.etag);
    const changed =
      expected === "*" ? this.#delete.run(scope, key).changes : this.#deleteIf.run(scope, key, expected).changes;
    return changed === 1 ? OK : this.whyNot(scope, key);
  }

  /** Nothing was written: the record is missing, or its etag differs. */
  private whyNot(scope: string, key: string): WriteResult {
    return refused(this.#exists.get(scope, key) ? "etagMismatch" : "missing");
  }

  private guard(write: () => number): number {
    try {
      return write();
    } catch (e) {
      if (e instanceof Database.SqliteError && e.code === "SQLITE_CONSTRAINT_FOREIGNKEY") {
        throw new Error(`Cannot store ${this.m.noun}: its instance does not exist.`, { cause: e });
      }
      throw e;
    }
  }
}

/** Registration states, also paged by the group they registered through. */
export class RegistrationRows extends VersionedRows<RegistrationRecord> {
  readonly #ofGroup: Database.Statement<[string, string, string, number], StoredRow>;

  constructor(db: Database.Database) {
    super(db, registrationMapping);
    this.#ofGroup = db.prepare(
      "SELECT key, doc, NULL AS sealed FROM registration_states WHERE id_scope = ? AND group_key = ? AND key > ? ORDER BY key LIMIT ?",
    );
  }

  ofGroup(scope: string, groupId: string, page: PageRequest): Page<RegistrationRecord> {
    checkLimit(page.limit);
    const rows = this.#ofGroup.all(scope, idKey(groupId), page.after ?? "", page.limit + 1);
    return this.toPage(scope, rows, page.limit);
  }
}
