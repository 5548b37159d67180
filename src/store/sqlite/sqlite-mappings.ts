// How each record type of the SQLite store maps onto its table: what goes into `doc`, what is
// sealed with the SecretBox, which columns are indexed.
import type Database from "better-sqlite3";
import type { EnrollmentSettings } from "../../domain/enrollment.js";
import { idKey } from "../../domain/ids.js";
import type { CaCertificate } from "../../domain/instance.js";
import type { RegistrationRecord } from "../../domain/registration-state.js";
import type { SecretBox } from "../../security/secret-box.js";
import type { Page, PageRequest } from "../records.js";
import { checkLimit, type Mapping, type StoredRow, VersionedRows } from "./sqlite-rows.js";

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

const registrationMapping: Mapping<RegistrationRecord> = {
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
