// Bulk enrollment operations (service-api.md §3.6): the request is checked whole before any
// write (mode, 1-10 items, ids, no duplicates); then each item succeeds or fails on its own.
import type { EnrollmentGroup, IndividualEnrollment } from "../domain/enrollment.js";
import { ProvisioError, toProvisioError } from "../domain/errors.js";
import type { IdScope } from "../domain/ids.js";
import { isObject } from "../domain/json.js";
import type { EnrollmentStore, Precondition } from "../store/store.js";
import type { EnrollmentKind } from "./enrollment-kinds.js";

export const MAX_BULK_ITEMS = 10;
const MODES = ["create", "update", "updateifmatchetag", "delete"] as const;
type Mode = (typeof MODES)[number];

export interface BulkItemError {
  registrationId?: string;
  enrollmentGroupId?: string;
  errorCode: number;
  errorStatus: string;
}

export interface BulkResult {
  isSuccessful: boolean;
  errors: BulkItemError[];
}

const invalid = (detail: string): ProvisioError => new ProvisioError("invalidBulk", { detail });

function checkRequest<T extends IndividualEnrollment | EnrollmentGroup>(
  body: unknown,
  kind: EnrollmentKind<T>,
): { mode: Mode; items: Record<string, unknown>[] } {
  if (!isObject(body)) throw invalid(`send {"mode": "create", "${kind.bulkField}": [...]}`);
  const mode = typeof body.mode === "string" ? (body.mode.toLowerCase() as Mode) : undefined;
  if (!mode || !MODES.includes(mode)) {
    throw invalid(`'mode' must be one of create, update, updateIfMatchETag, delete`);
  }
  const items = body[kind.bulkField];
  if (!Array.isArray(items) || items.length === 0 || items.length > MAX_BULK_ITEMS) {
    throw invalid(`'${kind.bulkField}' must be an array of 1 to ${MAX_BULK_ITEMS} items`);
  }
  const seen = new Set<string>();
  for (const [i, item] of items.entries()) {
    const id = isObject(item) ? item[kind.idField] : undefined;
    if (typeof id !== "string" || id === "") throw invalid(`item ${i} has no '${kind.idField}'`);
    if (seen.has(id.toLowerCase())) throw invalid(`'${id}' appears more than once`);
    seen.add(id.toLowerCase());
  }
  return { mode, items: items as Record<string, unknown>[] };
}

async function applyItem<T extends IndividualEnrollment | EnrollmentGroup>(
  store: EnrollmentStore,
  scope: IdScope,
  kind: EnrollmentKind<T>,
  mode: Mode,
  item: Record<string, unknown>,
  id: string,
  beforeCreate?: (record: T) => Promise<void>,
): Promise<void> {
  const refusal = (reason: string): ProvisioError =>
    reason === "exists"
      ? new ProvisioError(kind.exists)
      : reason === "missing"
        ? new ProvisioError(kind.notFound, { id })
        : new ProvisioError("etagMismatch", { id });

  if (mode === "delete") {
    const r = await kind.delete(store, scope, id, undefined);
    if (!r.ok) throw refusal(r.reason);
    return;
  }
  const existing = mode === "create" ? undefined : await kind.get(store, scope, id);
  let pre: Precondition;
  if (mode === "create") pre = { absent: true };
  else if (mode === "updateifmatchetag") {
    if (typeof item.etag !== "string" || item.etag === "") {
      throw new ProvisioError("invalidBody", { detail: "updateIfMatchETag needs each item's 'etag'." });
    }
    if (!existing) throw refusal("missing");
    pre = { etag: item.etag };
  } else pre = existing ? { etag: existing.etag } : { absent: true };
  const record = kind.fromBody(item, id, existing);
  if ("absent" in pre) await beforeCreate?.(record);
  const r = await kind.put(store, scope, record, pre);
  if (!r.ok) throw refusal(r.reason);
}

export async function runBulk<T extends IndividualEnrollment | EnrollmentGroup>(
  store: EnrollmentStore,
  scope: IdScope,
  kind: EnrollmentKind<T>,
  body: unknown,
  onInternal?: (err: unknown) => void,
  /** Count quotas on new records (enrollment-quotas.ts): a refusal is that item's error. */
  beforeCreate?: (record: IndividualEnrollment | EnrollmentGroup) => Promise<void>,
): Promise<BulkResult> {
  const { mode, items } = checkRequest(body, kind);
  const errors: BulkItemError[] = [];
  for (const item of items) {
    const id = item[kind.idField] as string;
    try {
      await applyItem(store, scope, kind, mode, item, id, beforeCreate);
    } catch (err) {
      // Earlier items are written: an unexpected failure is this item's error, never the whole reply's.
      const e = toProvisioError(err);
      if (!(err instanceof ProvisioError)) onInternal?.(err);
      errors.push({ [kind.idField]: id, errorCode: e.errorCode, errorStatus: e.message });
    }
  }
  return { isSuccessful: errors.length === 0, errors };
}
