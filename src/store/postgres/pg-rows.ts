// Generic row access for the PostgreSQL store, the async twin of ../sqlite/sqlite-rows.ts: one
// record type per table, scoped by instance, the JSON `doc` plus mapped columns; PgVersionedRows
// compares the expected etag in the write statement itself.
import type pg from "pg";
import { idKey } from "../../domain/ids.js";
import type { RegistrationRecord } from "../../domain/registration-state.js";
import {
  bareEtag,
  checkLimit,
  type Mapping,
  OK,
  pageOf,
  refused,
  registrationMapping,
  unreadable,
} from "../record-mappings.js";
import type { Page, PageRequest, Precondition, WriteResult } from "../records.js";

/** A pool, or one client inside a transaction. */
export type Queryable = Pick<pg.ClientBase, "query">;

interface StoredRow {
  key: string;
  doc: string;
  sealed: string | null;
}

/** `work` in one transaction on client `c`: committed if it resolves, rolled back if it throws. */
export async function inTransaction<R>(c: Queryable, work: () => Promise<R>): Promise<R> {
  await c.query("BEGIN");
  try {
    const r = await work();
    await c.query("COMMIT");
    return r;
  } catch (e) {
    await c.query("ROLLBACK").catch(() => undefined);
    throw e;
  }
}

/** PostgreSQL's SQLSTATE of a refused write. */
export const isUniqueViolation = (e: unknown): boolean => (e as { code?: unknown })?.code === "23505";
const isForeignKeyViolation = (e: unknown): boolean => (e as { code?: unknown })?.code === "23503";

export class PgRows<T> {
  protected readonly m: Mapping<T>;
  protected readonly cols: string[];
  readonly #select: string;
  readonly #upsert: string;

  constructor(m: Mapping<T>) {
    this.m = m;
    this.cols = ["doc", ...m.extra];
    this.#select = `SELECT key, doc, ${m.extra.includes("sealed") ? "sealed" : "NULL AS sealed"} FROM ${m.table}`;
    const names = ["id_scope", "key", ...this.cols];
    this.#upsert = `INSERT INTO ${m.table} (${names.join(", ")}) VALUES (${names.map((_, i) => `$${i + 1}`).join(", ")})
      ON CONFLICT (id_scope, key) DO UPDATE SET ${this.cols.map((c) => `${c} = excluded.${c}`).join(", ")}`;
  }

  async get(q: Queryable, scope: string, id: string): Promise<T | undefined> {
    const { rows } = await q.query<StoredRow>(`${this.#select} WHERE id_scope = $1 AND key = $2`, [scope, idKey(id)]);
    return rows[0] && this.decode(scope, rows[0]);
  }

  async all(q: Queryable, scope: string): Promise<T[]> {
    const { rows } = await q.query<StoredRow>(`${this.#select} WHERE id_scope = $1 ORDER BY key`, [scope]);
    return rows.map((row) => this.decode(scope, row));
  }

  async page(q: Queryable, scope: string, page: PageRequest): Promise<Page<T>> {
    checkLimit(page.limit);
    const { rows } = await q.query<StoredRow>(
      `${this.#select} WHERE id_scope = $1 AND key > $2 ORDER BY key LIMIT $3`,
      [scope, page.after ?? "", page.limit + 1],
    );
    return this.toPage(scope, rows, page.limit);
  }

  /** Replaces every row of the scope; call inside a transaction. */
  async replaceAll(q: Queryable, scope: string, records: readonly T[]): Promise<void> {
    await q.query(`DELETE FROM ${this.m.table} WHERE id_scope = $1`, [scope]);
    for (const r of records) await this.upsert(q, scope, r);
  }

  /** The values of a write, in `id_scope, key, ...cols` order. */
  values(scope: string, r: T): (string | null)[] {
    const c = this.m.encode(r);
    return [scope, this.m.key(r), ...this.cols.map((name) => c[name] ?? null)];
  }

  async upsert(q: Queryable, scope: string, r: T): Promise<void> {
    await this.guard(() => q.query(this.#upsert, this.values(scope, r)), scope);
  }

  /** The SQL of an upsert, for callers that fold it into a statement of their own. */
  get upsertSql(): string {
    return this.#upsert;
  }

  protected async guard<R>(write: () => Promise<R>, scope: string): Promise<R> {
    try {
      return await write();
    } catch (e) {
      if (isForeignKeyViolation(e)) {
        throw new Error(`Cannot store ${this.m.noun}: instance ${scope} does not exist.`, { cause: e });
      }
      throw e;
    }
  }

  protected toPage(scope: string, rows: StoredRow[], limit: number): Page<T> {
    return pageOf(
      rows,
      limit,
      (row) => row.key,
      (row) => this.decode(scope, row),
    );
  }

  decode(scope: string, row: StoredRow): T {
    try {
      return this.m.decode(row.doc, row.sealed);
    } catch (e) {
      throw unreadable(this.m.noun, row.key, scope, e);
    }
  }
}

export class PgVersionedRows<T> extends PgRows<T> {
  readonly #insert: string;
  readonly #update: string;
  readonly #updateIf: string;

  constructor(m: Mapping<T>) {
    super(m);
    const names = ["id_scope", "key", ...this.cols];
    this.#insert = `INSERT INTO ${m.table} (${names.join(", ")}) VALUES (${names.map((_, i) => `$${i + 1}`).join(", ")})
      ON CONFLICT (id_scope, key) DO NOTHING`;
    const set = this.cols.map((c, i) => `${c} = $${i + 3}`).join(", ");
    this.#update = `UPDATE ${m.table} SET ${set} WHERE id_scope = $1 AND key = $2`;
    this.#updateIf = `${this.#update} AND etag = $${names.length + 1}`;
  }

  async put(q: Queryable, scope: string, r: T, pre: Precondition): Promise<WriteResult> {
    if (pre === undefined) {
      await this.upsert(q, scope, r);
      return OK;
    }
    const values = this.values(scope, r);
    if ("absent" in pre) {
      const { rowCount } = await this.guard(() => q.query(this.#insert, values), scope);
      return rowCount === 1 ? OK : refused("exists");
    }
    const expected = bareEtag(pre.etag);
    const { rowCount } =
      expected === "*" ? await q.query(this.#update, values) : await q.query(this.#updateIf, [...values, expected]);
    return rowCount === 1 ? OK : this.whyNot(q, scope, values[1] as string);
  }

  async remove(q: Queryable, scope: string, id: string, pre: Precondition): Promise<WriteResult> {
    const key = idKey(id);
    if (pre !== undefined && "absent" in pre) return refused((await this.exists(q, scope, key)) ? "exists" : "missing");
    const expected = pre === undefined ? "*" : bareEtag(pre.etag);
    const t = this.m.table;
    const { rowCount } =
      expected === "*"
        ? await q.query(`DELETE FROM ${t} WHERE id_scope = $1 AND key = $2`, [scope, key])
        : await q.query(`DELETE FROM ${t} WHERE id_scope = $1 AND key = $2 AND etag = $3`, [scope, key, expected]);
    return rowCount === 1 ? OK : this.whyNot(q, scope, key);
  }

  private async exists(q: Queryable, scope: string, key: string): Promise<boolean> {
    const { rowCount } = await q.query(`SELECT 1 FROM ${this.m.table} WHERE id_scope = $1 AND key = $2`, [scope, key]);
    return rowCount === 1;
  }

  /** Nothing was written: the record is missing, or its etag differs. */
  private async whyNot(q: Queryable, scope: string, key: string): Promise<WriteResult> {
    return refused((await this.exists(q, scope, key)) ? "etagMismatch" : "missing");
  }
}

/** Registration states, also paged by the group they registered through. */
export class PgRegistrationRows extends PgVersionedRows<RegistrationRecord> {
  constructor() {
    super(registrationMapping);
  }

  async ofGroup(q: Queryable, scope: string, groupId: string, page: PageRequest): Promise<Page<RegistrationRecord>> {
    checkLimit(page.limit);
    const { rows } = await q.query<StoredRow>(
      "SELECT key, doc, NULL AS sealed FROM registration_states WHERE id_scope = $1 AND group_key = $2 AND key > $3 ORDER BY key LIMIT $4",
      [scope, idKey(groupId), page.after ?? "", page.limit + 1],
    );
    return this.toPage(scope, rows, page.limit);
  }
}
