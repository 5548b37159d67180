// The Store on SQLite (better-sqlite3). Work is synchronous inside the async methods: a local
// database answers in microseconds, and one connection serialises writes anyway.
// Schema and layout: migrations.ts. Secrets go through the SecretBox into `sealed` columns.
import Database from "better-sqlite3";
import type { EnrollmentGroup, EnrollmentSettings, IndividualEnrollment } from "../../domain/enrollment.js";
import { etagMatches } from "../../domain/etag.js";
import type { BuiltinHub, HubDeviceRecord } from "../../domain/hub.js";
import { type IdScope, idKey } from "../../domain/ids.js";
import type { AccessPolicy, CaCertificate, Instance, LinkedHub } from "../../domain/instance.js";
import type { RegistrationOperation } from "../../domain/operation.js";
import type { RegistrationRecord } from "../../domain/registration-state.js";
import type { SecretBox } from "../../security/secret-box.js";
import type { Page, PageRequest, Precondition, Store, WriteRefusal, WriteResult } from "../store.js";
import { migrate } from "./migrations.js";
import { SqliteHubStore } from "./sqlite-hub-store.js";
import { SqliteOperationStore } from "./sqlite-operation-store.js";

/** Named parameters of a row write: `doc` and the mapping's extra columns. */
type Columns = Record<string, string | null>;

interface StoredRow {
  key: string;
  doc: string;
  sealed: string | null;
}

/** How one record type maps onto its table. */
interface Mapping<T> {
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
function refusal(pre: Precondition, stored: string | undefined): WriteRefusal | undefined {
  if (pre === undefined) return undefined;
  if ("absent" in pre) return stored === undefined ? undefined : "exists";
  if (stored === undefined) return "missing";
  return etagMatches(pre.etag, stored) ? undefined : "etagMismatch";
}

const refused = (reason: WriteRefusal): WriteResult => ({ ok: false, reason });
// Frozen: it is shared by every successful write.
const OK: WriteResult = Object.freeze({ ok: true });

function checkLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1) {
    throw new RangeError(`Page limit must be a positive integer, not ${limit}.`);
  }
}

/** The rows of one record table, scoped by instance. */
class Rows<T> {
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
class VersionedRows<T> extends Rows<T> {
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

// --- Record mappings: what goes into `doc`, what is sealed. ---

/** Enrollments and groups: attestation.symmetricKey is sealed, the rest is the document. */
function settingsMapping<T extends EnrollmentSettings>(
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
      const { symmetricKey, ...attestation } = r.attestation;
      return {
        doc: JSON.stringify({ ...r, attestation }),
        etag: r.etag,
        sealed: symmetricKey ? box.seal(JSON.stringify(symmetricKey)) : null,
      };
    },
    decode: (doc, sealed) => {
      const r = JSON.parse(doc) as T;
      if (sealed !== null) r.attestation.symmetricKey = JSON.parse(box.open(sealed));
      return r;
    },
  };
}

/** Records whose secret fields `S` are sealed as one JSON object and merged back on read. */
function splitMapping<T extends object, S extends keyof T>(
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

const caMapping: Mapping<CaCertificate> = {
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
class RegistrationRows extends VersionedRows<RegistrationRecord> {
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

interface InstanceRow {
  doc: string;
}

export class SqliteStore implements Store {
  readonly #db: Database.Database;
  readonly #policies: Rows<AccessPolicy>;
  readonly #hubs: Rows<LinkedHub>;
  readonly #cas: VersionedRows<CaCertificate>;
  readonly #enrollments: VersionedRows<IndividualEnrollment>;
  readonly #groups: VersionedRows<EnrollmentGroup>;
  readonly #registrations: RegistrationRows;
  readonly #hubStore: SqliteHubStore;
  readonly #operations: SqliteOperationStore;
  readonly #commit: Database.Transaction<
    (scope: IdScope, record: RegistrationRecord, op: RegistrationOperation) => void
  >;

  readonly #getInstance: Database.Statement<[string], InstanceRow>;
  readonly #listInstances: Database.Statement<[], InstanceRow>;
  readonly #instanceEtag: Database.Statement<[string], { etag: string }>;
  readonly #deleteInstance: Database.Statement<[string]>;
  readonly #create: Database.Transaction<(i: Instance, policies: AccessPolicy[]) => WriteResult>;
  readonly #update: Database.Transaction<(i: Instance, pre: Precondition) => WriteResult>;
  readonly #replacePolicies: Database.Transaction<(scope: string, policies: AccessPolicy[]) => void>;
  readonly #replaceHubs: Database.Transaction<(scope: string, hubs: LinkedHub[]) => void>;

  constructor(db: Database.Database, secrets: SecretBox) {
    this.#db = db;
    this.#policies = new Rows(
      db,
      splitMapping<AccessPolicy, "primaryKey" | "secondaryKey">(
        secrets,
        "access_policies",
        "access policy",
        (p) => p.keyName,
        ["primaryKey", "secondaryKey"],
      ),
    );
    this.#hubs = new Rows(
      db,
      splitMapping<LinkedHub, "connectionString">(secrets, "linked_hubs", "linked hub", (h) => h.name, [
        "connectionString",
      ]),
    );
    this.#cas = new VersionedRows(db, caMapping);
    this.#enrollments = new VersionedRows(
      db,
      settingsMapping<IndividualEnrollment>(secrets, "enrollments", "enrollment", (e) => e.registrationId),
    );
    this.#groups = new VersionedRows(
      db,
      settingsMapping<EnrollmentGroup>(secrets, "enrollment_groups", "enrollment group", (g) => g.enrollmentGroupId),
    );
    this.#registrations = new RegistrationRows(db);
    this.#hubStore = new SqliteHubStore(db, secrets);
    this.#operations = new SqliteOperationStore(db);
    this.#commit = db.transaction((scope: IdScope, record: RegistrationRecord, op: RegistrationOperation) => {
      // Not registrations.put: a transaction nested in this one would cost a savepoint.
      this.#registrations.upsert(scope, record);
      this.#operations.put(scope, op);
    });

    this.#getInstance = db.prepare("SELECT doc FROM instances WHERE id_scope = ?");
    this.#listInstances = db.prepare("SELECT doc FROM instances ORDER BY name_key");
    this.#instanceEtag = db.prepare("SELECT etag FROM instances WHERE id_scope = ?");
    this.#deleteInstance = db.prepare("DELETE FROM instances WHERE id_scope = ?");
    const insertInstance = db.prepare<[Columns]>(
      "INSERT INTO instances (id_scope, name_key, host_key, etag, doc) VALUES (@id_scope, @name_key, @host_key, @etag, @doc)",
    );
    const updateInstance = db.prepare<[Columns]>(
      "UPDATE instances SET name_key = @name_key, host_key = @host_key, etag = @etag, doc = @doc WHERE id_scope = @id_scope",
    );
    // Any other instance already using the scope, the name or the host name.
    const clash = db.prepare<[string, string, string, string], { n: number }>(
      "SELECT 1 AS n FROM instances WHERE id_scope <> ? AND (id_scope = ? OR name_key = ? OR host_key = ?) LIMIT 1",
    );
    const clashes = (i: Instance, exceptScope: string): boolean =>
      clash.get(exceptScope, i.idScope, idKey(i.name), idKey(i.hostName)) !== undefined;

    this.#create = db.transaction((i: Instance, policies: AccessPolicy[]): WriteResult => {
      if (clashes(i, "")) return refused("exists");
      insertInstance.run(instanceColumns(i));
      this.#policies.replaceAll(i.idScope, policies);
      return OK;
    });
    this.#update = db.transaction((i: Instance, pre: Precondition): WriteResult => {
      // An update never creates: a missing instance is refused whatever the precondition.
      const stored = this.#instanceEtag.get(i.idScope)?.etag;
      if (stored === undefined) return refused("missing");
      const why = refusal(pre, stored);
      if (why) return refused(why);
      if (clashes(i, i.idScope)) return refused("exists");
      updateInstance.run(instanceColumns(i));
      return OK;
    });
    this.#replacePolicies = db.transaction((scope: string, policies: AccessPolicy[]) =>
      this.#policies.replaceAll(scope, policies),
    );
    this.#replaceHubs = db.transaction((scope: string, hubs: LinkedHub[]) => this.#hubs.replaceAll(scope, hubs));
  }

  // --- Instances ---

  async createInstance(instance: Instance, policies: AccessPolicy[]): Promise<WriteResult> {
    return this.#create.immediate(instance, policies);
  }

  async updateInstance(instance: Instance, precondition?: Precondition): Promise<WriteResult> {
    return this.#update.immediate(instance, precondition);
  }

  async deleteInstance(idScope: IdScope): Promise<boolean> {
    // Owned records go with it: ON DELETE CASCADE (foreign_keys is on).
    return this.#deleteInstance.run(idScope).changes > 0;
  }

  async getInstance(idScope: IdScope): Promise<Instance | undefined> {
    const row = this.#getInstance.get(idScope);
    return row && (JSON.parse(row.doc) as Instance);
  }

  async listInstances(): Promise<Instance[]> {
    return this.#listInstances.all().map((row) => JSON.parse(row.doc) as Instance);
  }

  async listPolicies(idScope: IdScope): Promise<AccessPolicy[]> {
    return this.#policies.all(idScope);
  }

  async getPolicy(idScope: IdScope, keyName: string): Promise<AccessPolicy | undefined> {
    return this.#policies.get(idScope, keyName);
  }

  async replacePolicies(idScope: IdScope, policies: AccessPolicy[]): Promise<void> {
    this.#replacePolicies.immediate(idScope, policies);
  }

  async listLinkedHubs(idScope: IdScope): Promise<LinkedHub[]> {
    return this.#hubs.all(idScope);
  }

  async replaceLinkedHubs(idScope: IdScope, hubs: LinkedHub[]): Promise<void> {
    this.#replaceHubs.immediate(idScope, hubs);
  }

  async listCaCertificates(idScope: IdScope): Promise<CaCertificate[]> {
    return this.#cas.all(idScope);
  }

  async getCaCertificate(idScope: IdScope, name: string): Promise<CaCertificate | undefined> {
    return this.#cas.get(idScope, name);
  }

  async putCaCertificate(idScope: IdScope, cert: CaCertificate, precondition?: Precondition): Promise<WriteResult> {
    return this.#cas.put(idScope, cert, precondition);
  }

  async deleteCaCertificate(idScope: IdScope, name: string, precondition?: Precondition): Promise<WriteResult> {
    return this.#cas.remove(idScope, name, precondition);
  }

  // --- Enrollments, groups, registration states ---

  async getEnrollment(idScope: IdScope, registrationId: string): Promise<IndividualEnrollment | undefined> {
    return this.#enrollments.get(idScope, registrationId);
  }

  async putEnrollment(idScope: IdScope, e: IndividualEnrollment, precondition?: Precondition): Promise<WriteResult> {
    return this.#enrollments.put(idScope, e, precondition);
  }

  async deleteEnrollment(idScope: IdScope, registrationId: string, precondition?: Precondition): Promise<WriteResult> {
    return this.#enrollments.remove(idScope, registrationId, precondition);
  }

  async listEnrollments(idScope: IdScope, page: PageRequest): Promise<Page<IndividualEnrollment>> {
    return this.#enrollments.page(idScope, page);
  }

  async getGroup(idScope: IdScope, groupId: string): Promise<EnrollmentGroup | undefined> {
    return this.#groups.get(idScope, groupId);
  }

  async putGroup(idScope: IdScope, g: EnrollmentGroup, precondition?: Precondition): Promise<WriteResult> {
    return this.#groups.put(idScope, g, precondition);
  }

  async deleteGroup(idScope: IdScope, groupId: string, precondition?: Precondition): Promise<WriteResult> {
    return this.#groups.remove(idScope, groupId, precondition);
  }

  async listGroups(idScope: IdScope, page: PageRequest): Promise<Page<EnrollmentGroup>> {
    return this.#groups.page(idScope, page);
  }

  async getRegistration(idScope: IdScope, registrationId: string): Promise<RegistrationRecord | undefined> {
    return this.#registrations.get(idScope, registrationId);
  }

  async putRegistration(idScope: IdScope, r: RegistrationRecord, precondition?: Precondition): Promise<WriteResult> {
    return this.#registrations.put(idScope, r, precondition);
  }

  async deleteRegistration(
    idScope: IdScope,
    registrationId: string,
    precondition?: Precondition,
  ): Promise<WriteResult> {
    return this.#registrations.remove(idScope, registrationId, precondition);
  }

  async listRegistrationsOfGroup(
    idScope: IdScope,
    groupId: string,
    page: PageRequest,
  ): Promise<Page<RegistrationRecord>> {
    return this.#registrations.ofGroup(idScope, groupId, page);
  }

  async getOperation(idScope: IdScope, operationId: string): Promise<RegistrationOperation | undefined> {
    return this.#operations.get(idScope, operationId);
  }

  async putOperation(
    idScope: IdScope,
    op: RegistrationOperation,
    precondition?: { absent: true },
  ): Promise<WriteResult> {
    return this.#operations.put(idScope, op, precondition);
  }

  async commitRegistration(idScope: IdScope, record: RegistrationRecord, op: RegistrationOperation): Promise<void> {
    this.#commit(idScope, record, op);
  }

  async deleteOperationsBefore(cutoff: string): Promise<number> {
    return this.#operations.sweep(cutoff);
  }

  // The built-in hubs' records live in the same database (HubStore).
  listBuiltinHubs(): Promise<BuiltinHub[]> {
    return this.#hubStore.listBuiltinHubs();
  }
  putBuiltinHub(hub: BuiltinHub): Promise<void> {
    return this.#hubStore.putBuiltinHub(hub);
  }
  getHubDevice(hub: string, deviceId: string): Promise<HubDeviceRecord | undefined> {
    return this.#hubStore.getHubDevice(hub, deviceId);
  }
  putHubDevice(hub: string, record: HubDeviceRecord, expected: number | "absent"): Promise<WriteResult> {
    return this.#hubStore.putHubDevice(hub, record, expected);
  }
  deleteHubDevice(hub: string, deviceId: string): Promise<boolean> {
    return this.#hubStore.deleteHubDevice(hub, deviceId);
  }
  listHubDevices(hub: string, page: PageRequest): Promise<Page<HubDeviceRecord>> {
    return this.#hubStore.listHubDevices(hub, page);
  }

  async close(): Promise<void> {
    if (this.#db.open) this.#db.close();
  }
}

function instanceColumns(i: Instance): Columns {
  return {
    id_scope: i.idScope,
    name_key: idKey(i.name),
    host_key: idKey(i.hostName),
    etag: i.etag,
    doc: JSON.stringify(i),
  };
}

/** Opens (creating if needed) the database file and brings its schema up to date. */
export function openSqliteStore(file: string, secrets: SecretBox): SqliteStore {
  const db = new Database(file);
  try {
    db.pragma("journal_mode = WAL");
    // NORMAL is durable across application crashes in WAL mode; only power loss may drop the last commits.
    db.pragma("synchronous = NORMAL");
    db.pragma("foreign_keys = ON");
    db.pragma("busy_timeout = 5000");
    migrate(db);
    return new SqliteStore(db, secrets);
  } catch (e) {
    db.close();
    throw e;
  }
}
