// What every store interface shares: conditional writes and paging (one concurrency style: the
// expected etag or version is compared in the write itself, never read first).

/**
 * A write's precondition, checked atomically with the write:
 * - `undefined`: unconditional;
 * - `{ absent: true }`: the record must not exist (create);
 * - `{ etag }`: the record must exist with this etag (`*` = any version).
 */
export type Precondition = undefined | { absent: true } | { etag: string };

/** Why a conditional write did not happen. */
export type WriteRefusal = "exists" | "missing" | "etagMismatch";
export type WriteResult = { ok: true } | { ok: false; reason: WriteRefusal };

export interface Page<T> {
  items: T[];
  /** Key to pass as `after` for the next page; absent on the last page. */
  next?: string;
}

export interface PageRequest {
  /** Exclusive lower bound on the record key (the lower-cased id). */
  after?: string;
  limit: number;
}
