// Generic row access for the SQLite store: one record type per table, scoped by instance, the
// record as a JSON `doc` plus mapped columns; VersionedRows adds etag preconditions.
import Database from "better-sqlite3";
import { etagMatches } from "../../domain/etag.js";
import { idKey } from "../../domain/ids.js";
import type { Page, PageRequest, Precondition, WriteRefusal, WriteResult } from "../store.js";

/** Named parameters of a row write: `doc` and the mapping's extra columns. */
export type Columns = Record<string, string | null>;

export interface StoredRow {
  key: string;
  doc: string;
  sealed: string | null;
}

/** How one record type maps onto its table. */
export interface Mapping<T> {
  table: string;
  /** What the record is called in error messages. */
  noun: string;
  /** Columns written besides id_scope, key and doc. */
  extra: readonly ("etag" | "sealed" | "group_key")[];
  key(r: T): string;
  encode(r: T): Columns;
  decode(doc: string, sealed: string | null): T;
}

/** Why `pre` refuses a write over a record whose stored etag is `stored` (undefined: absent). */
export function refusal(pre: Precondition, stored: string | undefined): WriteRefusal | undefined {
  if (pre === undefined) return undefined;
  if ("absent" in pre) return stored === undefined ? undefined : "exists";
  if (stored === undefined) return "missing";
  return etagMatches(pre.etag, stored) ? undefined : "etagMismatch";
}

export const refused = (reason: WriteRefusal): WriteResult => ({ ok: false, reason });
// Frozen: it is shared by every successful write.
export const OK: WriteResult = Object.freeze({ ok: true });

export function checkLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1) {
    throw new RangeError(`Page limit must be a positive integer, not ${limit}.`);
  }
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
    const more = rows.length > limit;
    const shown = more ? rows.slice(0, limit) : rows;
    const items = shown.map((row) => this.decode(scope, row));
    const last = shown[shown.length - 1];
    return more && last ? { items, next: last.key } : { items };
  }

  protected decode(scope: string, row: StoredRow): T {
    try {
      return this.m.decode(row.doc, row.sealed);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw new Error(`Cannot read ${this.m.noun} '${row.key}' of instance ${scope}: ${why}`, { cause: e });
    }
  }
}

/** Rows with an etag: conditional writes and deletes, each atomic in one transaction. */
export class VersionedRows<T> extends Rows<T> {
  readonly #etag: Database.Statement<[string, string], { etag: string }>;
  readonly #delete: Database.Statement<[string, string]>;
  readonly #put: Database.Transaction<(scope: string, r: T, pre: Precondition) => WriteResult>;
  readonly #remove: Database.Transaction<(scope: string, key: string, pre: Precondition) => WriteResult>;

  constructor(db: Database.Database, m: Mapping<T>) {
    super(db, m);
    this.#etag = db.prepare(`SELECT etag FROM ${m.table} WHERE id_scope = ? AND key = ?`);
    this.#delete = db.prepare(`DELETE FROM ${m.table} WHERE id_scope = ? AND key = ?`);
    this.#put = db.transaction((scope: string, r: T, pre: Precondition): WriteResult => {
      const why = pre && refusal(pre, this.#etag.get(scope, m.key(r))?.etag);
      if (why) return refused(why);
      this.upsert(scope, r);
      return OK;
    });
    this.#remove = db.transaction((scope: string, key: string, pre: Precondition): WriteResult => {
      const stored = this.#etag.get(scope, key)?.etag;
      if (stored === undefined) return refused("missing");
      const why = refusal(pre, stored);
      if (why) return refused(why);
      this.#delete.run(scope, key);
      return OK;
    });
  }

  put(scope: string, r: T, pre: Precondition): WriteResult {
    // IMMEDIATE takes the write lock up front: no upgrade deadlock between processes.
    return this.#put.immediate(scope, r, pre);
  }

  remove(scope: string, id: string, pre: Precondition): WriteResult {
    return this.#remove.immediate(scope, idKey(id), pre);
  }
}
