// How each record type maps onto its table, whatever the database: what goes into the JSON `doc`,
// what is sealed with the SecretBox, which columns lookups and paging need. Shared by the SQLite
// and PostgreSQL stores, so both write the same columns and read each other's data (the copy
// from one to the other moves rows as they are).
import type { AuditEvent, AuditQuery, StoredAuditEvent } from "../domain/audit.js";
import type { EnrollmentSettings } from "../domain/enrollment.js";
import type { BuiltinHub, HubDeviceRecord, HubPolicy } from "../domain/hub.js";
import type { HubIntent } from "../domain/hub-intent.js";
import { type IdScope, idKey } from "../domain/ids.js";
import type { CaCertificate } from "../domain/instance.js";
import type { RegistrationOperation } from "../domain/operation.js";
import type { RegistrationRecord } from "../domain/registration-state.js";
import type { SecretBox } from "../security/secret-box.js";
import type { Page, WriteRefusal, WriteResult } from "./records.js";

/** Column values of a row write: `doc` and the mapping's extra columns. */
export type Columns = Record<string, string | null>;

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

export const refused = (reason: WriteRefusal): WriteResult => ({ ok: false, reason });
// Frozen: it is shared by every successful write.
export const OK: WriteResult = Object.freeze({ ok: true });

export function checkLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1) {
    throw new RangeError(`Page limit must be a positive integer, not ${limit}.`);
  }
}

/** The first `limit` of `rows` (fetched with limit + 1) as a page; the next key is the last shown one's. */
export function pageOf<R, T>(rows: readonly R[], limit: number, key: (r: R) => string, decode: (r: R) => T): Page<T> {
  const more = rows.length > limit;
  const shown = more ? rows.slice(0, limit) : rows;
  const items = shown.map(decode);
  const last = shown[shown.length - 1];
  return more && last ? { items, next: key(last) } : { items };
}

/** The etag as stored: If-Match values may come quoted (service-api.md §6). */
export const bareEtag = (etag: string): string => {
  const t = etag.trim();
  return t.length >= 2 && t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1) : t;
};

/** A record that could not be read back, named so an operator can find it. */
export function unreadable(noun: string, key: string, scope: string, e: unknown): Error {
  const why = e instanceof Error ? e.message : String(e);
  return new Error(`Cannot read ${noun} '${key}' of instance ${scope}: ${why}`, { cause: e });
}

/** Enrollments and groups: attestation.symmetricKey is sealed, the rest is the document. */
export function settingsMapping<T extends EnrollmentSettings>(
  box: SecretBox,
  table: string,
  noun: string,
  id: (r: T) => string,
): Mapping<T> {
  return {
    table,
    noun,
    extra: ["etag", "sealed"],
    key: (r) => idKey(id(r)),
    encode: (r) => {
      if (r.attestation.type !== "symmetricKey") return { doc: JSON.stringify(r), etag: r.etag, sealed: null };
      const { symmetricKey, ...attestation } = r.attestation;
      return {
        doc: JSON.stringify({ ...r, attestation }),
        etag: r.etag,
        sealed: box.seal(JSON.stringify(symmetricKey)),
      };
    },
    decode: (doc, sealed) => {
      const r = JSON.parse(doc) as T;
      // The document holds `{type: "symmetricKey"}`; the keys come back from the sealed column.
      if (sealed !== null) (r.attestation as { symmetricKey?: unknown }).symmetricKey = JSON.parse(box.open(sealed));
      return r;
    },
  };
}

/** Records whose secret fields `S` are sealed as one JSON object and merged back on read. */
export function splitMapping<T extends object, S extends keyof T>(
  box: SecretBox,
  table: string,
  noun: string,
  id: (r: T) => string,
  secretFields: readonly S[],
): Mapping<T> {
  return {
    table,
    noun,
    extra: ["sealed"],
    key: (r) => idKey(id(r)),
    encode: (r) => {
      const doc: Partial<T> = { ...r };
      const secrets: Partial<T> = {};
      for (const f of secretFields) {
        secrets[f] = r[f];
        delete doc[f];
      }
      return { doc: JSON.stringify(doc), sealed: box.seal(JSON.stringify(secrets)) };
    },
    decode: (doc, sealed) => ({ ...JSON.parse(doc), ...(sealed === null ? {} : JSON.parse(box.open(sealed))) }) as T,
  };
}

export const caMapping: Mapping<CaCertificate> = {
  table: "ca_certificates",
  noun: "CA certificate",
  extra: ["etag"],
  key: (c) => idKey(c.name),
  encode: (c) => ({ doc: JSON.stringify(c), etag: c.etag }),
  decode: (doc) => JSON.parse(doc) as CaCertificate,
};

export const registrationMapping: Mapping<RegistrationRecord> = {
  table: "registration_states",
  noun: "registration state",
  extra: ["etag", "group_key"],
  key: (r) => idKey(r.state.registrationId),
  encode: (r) => ({
    doc: JSON.stringify(r),
    etag: r.state.etag,
    group_key: r.enrollmentGroupId === undefined ? null : idKey(r.enrollmentGroupId),
  }),
  decode: (doc) => JSON.parse(doc) as RegistrationRecord,
};

// --- Registration operations: the carrier lives in columns, renewed without touching the doc ---

export function encodeOperation(op: RegistrationOperation): {
  doc: string;
  carrier: string | null;
  until: string | null;
} {
  const { carrier, ...rest } = op;
  return { doc: JSON.stringify(rest), carrier: carrier?.node ?? null, until: carrier?.until ?? null };
}

export function decodeOperation(doc: string, carrier: string | null, until: string | null): RegistrationOperation {
  const op = JSON.parse(doc) as RegistrationOperation;
  return carrier !== null && until !== null ? { ...op, carrier: { node: carrier, until } } : op;
}

// --- Hub intents: the carrier lives in columns, renewed without touching the doc ---

export function encodeHubIntent(intent: HubIntent): { doc: string; carrier: string; until: string } {
  const { carrier, ...doc } = intent;
  return { doc: JSON.stringify(doc), carrier: carrier.node, until: carrier.until };
}

export function decodeHubIntent(row: { id_scope: string; doc: string; carrier: string; carried_until: string }): {
  idScope: IdScope;
  intent: HubIntent;
} {
  const doc = JSON.parse(row.doc) as Omit<HubIntent, "carrier">;
  return {
    idScope: row.id_scope as IdScope,
    intent: { ...doc, carrier: { node: row.carrier, until: row.carried_until } },
  };
}

// --- The built-in hubs' records (hub-store.ts) ---

type DeviceKeys = { primaryKey: string | null; secondaryKey: string | null };

/** A built-in hub's configuration: its policies' keys sealed. */
export function encodeBuiltinHub(box: SecretBox, hub: BuiltinHub): { doc: string; sealed: string } {
  const doc = { ...hub, policies: hub.policies.map(({ primaryKey: _p, secondaryKey: _s, ...rest }) => rest) };
  const keys = hub.policies.map((p) => ({ primaryKey: p.primaryKey, secondaryKey: p.secondaryKey }));
  return { doc: JSON.stringify(doc), sealed: box.seal(JSON.stringify(keys)) };
}

export function decodeBuiltinHub(box: SecretBox, doc: string, sealed: string): BuiltinHub {
  const hub = JSON.parse(doc) as Omit<BuiltinHub, "policies"> & {
    policies: Omit<HubPolicy, "primaryKey" | "secondaryKey">[];
  };
  const keys = JSON.parse(box.open(sealed)) as { primaryKey: string; secondaryKey: string }[];
  return {
    ...hub,
    policies: hub.policies.map((p, i) => ({ ...p, ...(keys[i] as { primaryKey: string; secondaryKey: string }) })),
  };
}

/** A hub device: identity and twin as the doc, its symmetric keys (when it has any) sealed. */
export function encodeHubDevice(box: SecretBox, record: HubDeviceRecord): { doc: string; sealed: string | null } {
  const { symmetricKey, ...auth } = record.identity.authentication;
  const hasKeys = symmetricKey.primaryKey !== null || symmetricKey.secondaryKey !== null;
  const doc = { identity: { ...record.identity, authentication: auth }, twin: record.twin };
  return { doc: JSON.stringify(doc), sealed: hasKeys ? box.seal(JSON.stringify(symmetricKey)) : null };
}

export function decodeHubDevice(
  box: SecretBox,
  doc: string,
  sealed: string | null,
  rowVersion: number,
): HubDeviceRecord {
  const parsed = JSON.parse(doc) as {
    identity: Omit<HubDeviceRecord["identity"], "authentication"> & {
      authentication: Omit<HubDeviceRecord["identity"]["authentication"], "symmetricKey">;
    };
    twin: HubDeviceRecord["twin"];
  };
  const symmetricKey: DeviceKeys = sealed
    ? (JSON.parse(box.open(sealed)) as DeviceKeys)
    : { primaryKey: null, secondaryKey: null };
  return {
    identity: { ...parsed.identity, authentication: { ...parsed.identity.authentication, symmetricKey } },
    twin: parsed.twin,
    rowVersion,
  };
}

/** An audit event's columns: the filtered ones beside the whole event as JSON. */
export const encodeAudit = (e: AuditEvent): [string, string, string, string] => [
  e.at,
  e.service,
  e.caller.name,
  JSON.stringify(e),
];

export const decodeAudit = (row: { seq: number | string; doc: string }): StoredAuditEvent => ({
  ...(JSON.parse(row.doc) as AuditEvent),
  seq: Number(row.seq), // PostgreSQL's BIGSERIAL comes back as text
});

/** The newest-first read of an audit query, with `?` placeholders (numbered for PostgreSQL). */
export function auditSelect(q: AuditQuery): { sql: string; values: (string | number)[] } {
  const where = ["service = ?"];
  const values: (string | number)[] = [q.service];
  if (q.beforeSeq !== undefined) {
    where.push("seq < ?");
    values.push(q.beforeSeq);
  }
  if (q.since !== undefined) {
    where.push("at >= ?");
    values.push(q.since);
  }
  if (q.until !== undefined) {
    where.push("at <= ?");
    values.push(q.until);
  }
  if (q.caller !== undefined) {
    where.push("caller_name = ?");
    values.push(q.caller);
  }
  values.push(q.top);
  return { sql: `SELECT seq, doc FROM audit_events WHERE ${where.join(" AND ")} ORDER BY seq DESC LIMIT ?`, values };
}
