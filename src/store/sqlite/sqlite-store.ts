// The provisioning store on SQLite (better-sqlite3). Work is synchronous inside the async methods: a local
// database answers in microseconds, and one connection serialises writes anyway.
// Schema and layout: migrations.ts; rows: sqlite-rows.ts; what each table holds: ../record-mappings.ts.
import { existsSync, statSync } from "node:fs";
import Database from "better-sqlite3";
import type { RegistrationAttempt } from "../../domain/attempt.js";
import type { AuditEvent, AuditQuery, StoredAuditEvent } from "../../domain/audit.js";
import type { EnrollmentGroup, IndividualEnrollment } from "../../domain/enrollment.js";
import type { HubIntent } from "../../domain/hub-intent.js";
import { type IdScope, idKey } from "../../domain/ids.js";
import type { AccessPolicy, CaCertificate, Instance, LinkedHub } from "../../domain/instance.js";
import type { RegistrationOperation } from "../../domain/operation.js";
import type { RegistrationRecord } from "../../domain/registration-state.js";
import type { TpmChallenge } from "../../domain/tpm-challenge.js";
import type { SecretBox } from "../../security/secret-box.js";
import {
  auditSelect,
  bareEtag,
  type Columns,
  caMapping,
  decodeAudit,
  encodeAudit,
  OK,
  refused,
  settingsMapping,
  splitMapping,
} from "../record-mappings.js";
import type {
  ClaimedHubIntent,
  DeviceRecords,
  InstanceParts,
  IntentSettlement,
  Page,
  PageRequest,
  Precondition,
  ProvisioningStore,
  ScopeRecords,
  WriteResult,
} from "../store.js";
import { ChangePublisher, type StoreChange } from "../store-changes.js";
import { migrate } from "./migrations.js";
import { SqliteHubIntents } from "./sqlite-hub-intents.js";
import { SqliteHubStore } from "./sqlite-hub-store.js";
import { SqliteOperationStore } from "./sqlite-operation-store.js";
import { RegistrationRows, Rows, VersionedRows } from "./sqlite-rows.js";
import { SqliteTpmChallenges } from "./sqlite-tpm-challenges.js";

interface InstanceRow {
  doc: string;
}

export class SqliteStore implements ProvisioningStore {
  readonly changes = new ChangePublisher();
  /** The built-in hubs' records live in the same database, behind their own interface. */
  readonly hubs: SqliteHubStore;
  readonly #db: Database.Database;
  readonly #policies: Rows<AccessPolicy>;
  readonly #hubs: Rows<LinkedHub>;
  readonly #cas: VersionedRows<CaCertificate>;
  readonly #enrollments: VersionedRows<IndividualEnrollment>;
  readonly #groups: VersionedRows<EnrollmentGroup>;
  readonly #registrations: RegistrationRows;
  readonly #readScope: Database.Transaction<(scope: string) => ScopeRecords>;
  readonly #readDevice: Database.Transaction<(scope: string, id: string) => DeviceRecords>;
  readonly #operations: SqliteOperationStore;
  readonly #tpmChallenges: SqliteTpmChallenges;
  readonly #hubIntents: SqliteHubIntents;
  readonly #renew: Database.Transaction<(node: string, until: string) => void>;
  readonly #commit: Database.Transaction<
    (scope: IdScope, record: RegistrationRecord, op: RegistrationOperation, intent: IntentSettlement) => void
  >;

  readonly #getInstance: Database.Statement<[string], InstanceRow>;
  readonly #listInstances: Database.Statement<[], InstanceRow>;
  readonly #instanceEtag: Database.Statement<[string], { etag: string }>;
  readonly #deleteInstance: Database.Statement<[string]>;
  readonly #create: Database.Transaction<(i: Instance, policies: AccessPolicy[], hubs?: LinkedHub[]) => WriteResult>;
  readonly #update: Database.Transaction<(i: Instance, pre: Precondition, replace: InstanceParts) => WriteResult>;
  readonly #replacePolicies: Database.Transaction<(scope: string, policies: AccessPolicy[]) => void>;
  readonly #replaceHubs: Database.Transaction<(scope: string, hubs: LinkedHub[]) => void>;
  readonly #addCa: Database.Transaction<
    (scope: string, cert: CaCertificate, limit: number) => WriteResult | { ok: false; reason: "full" }
  >;

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
    this.hubs = new SqliteHubStore(db, secrets);
    // One read transaction: a view compiled from it never mixes two versions of the scope.
    this.#readScope = db.transaction((scope: string) => ({
      groups: this.#groups.all(scope),
      linkedHubs: this.#hubs.all(scope),
      caCertificates: this.#cas.all(scope),
    }));
    this.#operations = new SqliteOperationStore(db);
    this.#readDevice = db.transaction((scope: string, id: string) => ({
      enrollment: this.#enrollments.get(scope, id),
      registration: this.#registrations.get(scope, id),
    }));
    this.#tpmChallenges = new SqliteTpmChallenges(db, secrets);
    this.#hubIntents = new SqliteHubIntents(db);
    this.#renew = db.transaction((node: string, until: string) => {
      this.#operations.renew(node, until);
      this.#hubIntents.renew(node, until);
    });
    this.#commit = db.transaction(
      (scope: IdScope, record: RegistrationRecord, op: RegistrationOperation, intent: IntentSettlement) => {
        // Not registrations.put: a transaction nested in this one would cost a savepoint.
        this.#registrations.upsert(scope, record);
        this.#operations.put(scope, op);
        this.#hubIntents.settle(scope, op.operationId, intent);
      },
    );

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
    this.#create = db.transaction((i: Instance, policies: AccessPolicy[], hubs?: LinkedHub[]): WriteResult => {
      try {
        insertInstance.run(instanceColumns(i));
      } catch (e) {
        // The scope, the name or the host name is taken (primary key, unique indexes).
        if (e instanceof Database.SqliteError && e.code.startsWith("SQLITE_CONSTRAINT")) return refused("exists");
        throw e;
      }
      this.#policies.replaceAll(i.idScope, policies);
      if (hubs) this.#hubs.replaceAll(i.idScope, hubs);
      return OK;
    });
    const updateInstanceIf = db.prepare<[Columns]>(
      "UPDATE instances SET name_key = @name_key, host_key = @host_key, etag = @etag, doc = @doc WHERE id_scope = @id_scope AND etag = @expected",
    );
    this.#update = db.transaction((i: Instance, pre: Precondition, replace: InstanceParts): WriteResult => {
      // An update never creates: a missing instance is refused whatever the precondition.
      if (pre !== undefined && "absent" in pre) {
        return refused(this.#instanceEtag.get(i.idScope) ? "exists" : "missing");
      }
      const expected = pre === undefined ? "*" : bareEtag(pre.etag);
      let changed: number;
      try {
        const columns = instanceColumns(i);
        changed =
          expected === "*"
            ? updateInstance.run(columns).changes
            : updateInstanceIf.run({ ...columns, expected }).changes;
      } catch (e) {
        // Another instance has the name or host name (unique indexes).
        if (e instanceof Database.SqliteError && e.code === "SQLITE_CONSTRAINT_UNIQUE") return refused("exists");
        throw e;
      }
      if (changed === 0) return refused(this.#instanceEtag.get(i.idScope) ? "etagMismatch" : "missing");
      if (replace.policies) this.#policies.replaceAll(i.idScope, replace.policies);
      if (replace.hubs) this.#hubs.replaceAll(i.idScope, replace.hubs);
      return OK;
    });
    this.#replacePolicies = db.transaction((scope: string, policies: AccessPolicy[]) =>
      this.#policies.replaceAll(scope, policies),
    );
    this.#replaceHubs = db.transaction((scope: string, hubs: LinkedHub[]) => this.#hubs.replaceAll(scope, hubs));
    const countCas = db.prepare<[string], { n: number }>(
      "SELECT COUNT(*) AS n FROM ca_certificates WHERE id_scope = ?",
    );
    this.#addCa = db.transaction((scope: string, cert: CaCertificate, limit: number) => {
      // A taken name is "exists" even when the store is full: the caller then needs an update.
      if (this.#cas.get(scope, cert.name)) return refused("exists");
      if ((countCas.get(scope)?.n ?? 0) >= limit) return { ok: false, reason: "full" } as const;
      this.#cas.upsert(scope, cert);
      return OK;
    });
  }

  // --- Instances ---

  async createInstance(instance: Instance, policies: AccessPolicy[], hubs?: LinkedHub[]): Promise<WriteResult> {
    const r = this.#create.immediate(instance, policies, hubs);
    if (r.ok) await this.announce({ kind: "instance", idScope: instance.idScope, instance });
    return r;
  }

  async updateInstance(
    instance: Instance,
    precondition?: Precondition,
    replace: InstanceParts = {},
  ): Promise<WriteResult> {
    const r = this.#update.immediate(instance, precondition, replace);
    if (!r.ok) return r;
    await this.announce({ kind: "instance", idScope: instance.idScope, instance });
    if (replace.hubs) await this.announce({ kind: "scope", idScope: instance.idScope, what: "linkedHubs" });
    if (replace.policies) await this.announce({ kind: "scope", idScope: instance.idScope, what: "policies" });
    return r;
  }

  async deleteInstance(idScope: IdScope): Promise<boolean> {
    // Owned records go with it: ON DELETE CASCADE (foreign_keys is on).
    const deleted = this.#deleteInstance.run(idScope).changes > 0;
    if (deleted) await this.announce({ kind: "instance", idScope });
    return deleted;
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
    await this.announce({ kind: "scope", idScope, what: "policies" });
  }

  async listLinkedHubs(idScope: IdScope): Promise<LinkedHub[]> {
    return this.#hubs.all(idScope);
  }

  async replaceLinkedHubs(idScope: IdScope, hubs: LinkedHub[]): Promise<void> {
    this.#replaceHubs.immediate(idScope, hubs);
    await this.announce({ kind: "scope", idScope, what: "linkedHubs" });
  }

  async listCaCertificates(idScope: IdScope): Promise<CaCertificate[]> {
    return this.#cas.all(idScope);
  }

  async getCaCertificate(idScope: IdScope, name: string): Promise<CaCertificate | undefined> {
    return this.#cas.get(idScope, name);
  }

  async putCaCertificate(idScope: IdScope, cert: CaCertificate, precondition?: Precondition): Promise<WriteResult> {
    return this.announced(this.#cas.put(idScope, cert, precondition), {
      kind: "scope",
      idScope,
      what: "caCertificates",
    });
  }

  async addCaCertificate(
    idScope: IdScope,
    cert: CaCertificate,
    limit: number,
  ): Promise<WriteResult | { ok: false; reason: "full" }> {
    const r = this.#addCa.immediate(idScope, cert, limit);
    if (r.ok) await this.announce({ kind: "scope", idScope, what: "caCertificates" });
    return r;
  }

  async deleteCaCertificate(idScope: IdScope, name: string, precondition?: Precondition): Promise<WriteResult> {
    return this.announced(this.#cas.remove(idScope, name, precondition), {
      kind: "scope",
      idScope,
      what: "caCertificates",
    });
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
    return this.announced(this.#groups.put(idScope, g, precondition), { kind: "scope", idScope, what: "groups" });
  }

  async deleteGroup(idScope: IdScope, groupId: string, precondition?: Precondition): Promise<WriteResult> {
    return this.announced(this.#groups.remove(idScope, groupId, precondition), {
      kind: "scope",
      idScope,
      what: "groups",
    });
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

  async listRegistrations(idScope: IdScope, page: PageRequest): Promise<Page<RegistrationRecord>> {
    return this.#registrations.page(idScope, page);
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

  async readDevice(idScope: IdScope, registrationId: string): Promise<DeviceRecords> {
    return this.#readDevice(idScope, registrationId);
  }

  async readScope(idScope: IdScope): Promise<ScopeRecords> {
    return this.#readScope(idScope);
  }

  async commitRegistration(
    idScope: IdScope,
    record: RegistrationRecord,
    op: RegistrationOperation,
    intent: IntentSettlement = "delete",
  ): Promise<void> {
    this.#commit(idScope, record, op, intent);
  }

  async putHubIntent(idScope: IdScope, intent: HubIntent): Promise<void> {
    this.#hubIntents.put(idScope, intent);
  }

  async deleteHubIntent(idScope: IdScope, operationId: string): Promise<void> {
    this.#hubIntents.delete(idScope, operationId);
  }

  async claimHubIntents(node: string, until: string, now: string, limit: number): Promise<ClaimedHubIntent[]> {
    return this.#hubIntents.claim(node, until, now, limit);
  }

  async renewCarrier(node: string, until: string): Promise<void> {
    this.#renew(node, until);
  }

  async deleteOperationsBefore(cutoff: string): Promise<number> {
    const n = this.#operations.sweep(cutoff);
    // auto_vacuum = INCREMENTAL (openSqliteStore): free pages go back to the file system.
    if (n > 0) this.#db.pragma("incremental_vacuum");
    return n;
  }

  async countRecords(idScope: IdScope, what: "enrollments" | "registrations"): Promise<number> {
    const table = what === "enrollments" ? "enrollments" : "registration_states";
    const row = this.#db
      .prepare<[string], { n: number }>(`SELECT count(*) AS n FROM ${table} WHERE id_scope = ?`)
      .get(idScope);
    return row?.n ?? 0;
  }

  async addRefusedAttempt(idScope: IdScope, registrationId: string, attempt: RegistrationAttempt): Promise<void> {
    this.#db
      .prepare("INSERT INTO refused_attempts (id_scope, registration_key, at, doc) VALUES (?, ?, ?, ?)")
      .run(idScope, idKey(registrationId), attempt.at, JSON.stringify(attempt));
  }

  async listRefusedAttempts(idScope: IdScope, registrationId: string, limit: number): Promise<RegistrationAttempt[]> {
    return this.#db
      .prepare<[string, string, number], { doc: string }>(
        "SELECT doc FROM refused_attempts WHERE id_scope = ? AND registration_key = ? ORDER BY seq DESC LIMIT ?",
      )
      .all(idScope, idKey(registrationId), limit)
      .map((r) => JSON.parse(r.doc) as RegistrationAttempt);
  }

  async trimRefusedAttempts(cutoff: string, keep: number): Promise<number> {
    const old = this.#db.prepare("DELETE FROM refused_attempts WHERE at < ?").run(cutoff).changes;
    const over = this.#db
      .prepare(
        "DELETE FROM refused_attempts WHERE seq <= (SELECT seq FROM refused_attempts ORDER BY seq DESC LIMIT 1 OFFSET ?)",
      )
      .run(keep).changes;
    return old + over;
  }

  async appendAudit(event: AuditEvent): Promise<void> {
    this.#db
      .prepare("INSERT INTO audit_events (at, service, caller_name, doc) VALUES (?, ?, ?, ?)")
      .run(...encodeAudit(event));
  }

  async listAudit(query: AuditQuery): Promise<StoredAuditEvent[]> {
    const { sql, values } = auditSelect(query);
    return this.#db
      .prepare<unknown[], { seq: number; doc: string }>(sql)
      .all(...values)
      .map(decodeAudit);
  }

  async deleteAuditBefore(cutoff: string): Promise<number> {
    return this.#db.prepare("DELETE FROM audit_events WHERE at < ?").run(cutoff).changes;
  }

  async sizeBytes(): Promise<number> {
    const pages = Number(this.#db.pragma("page_count", { simple: true }));
    const size = Number(this.#db.pragma("page_size", { simple: true }));
    const wal = `${this.#db.name}-wal`;
    return pages * size + (existsSync(wal) ? statSync(wal).size : 0);
  }

  async putTpmChallenge(idScope: IdScope, registrationId: string, challenge: TpmChallenge): Promise<void> {
    this.#tpmChallenges.put(idScope, registrationId, challenge);
  }

  async getTpmChallenge(idScope: IdScope, registrationId: string): Promise<TpmChallenge | undefined> {
    return this.#tpmChallenges.get(idScope, registrationId);
  }

  /** Tell subscribers about a committed change; the write resolves once they have taken it in. */
  private announce(change: StoreChange): Promise<void> {
    return this.changes.publish(change);
  }

  private async announced(r: WriteResult, change: StoreChange): Promise<WriteResult> {
    if (r.ok) await this.announce(change);
    return r;
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
    // Checkpoints run inside the commit that crosses the threshold, with two fsyncs, on the event
    // loop. At the default 1000 pages that is every ~90 registrations; at 10000 (a WAL of ~40 MB)
    // pages written again and again are copied once, for ~100 µs less per registration (bench/).
    db.pragma("wal_autocheckpoint = 10000");
    db.pragma("foreign_keys = ON");
    db.pragma("busy_timeout = 5000");
    // Space freed by swept operations is given back (incremental_vacuum after each sweep). A
    // database made before this setting is converted once, by one VACUUM.
    if (db.pragma("auto_vacuum", { simple: true }) !== 2) {
      db.pragma("auto_vacuum = INCREMENTAL");
      db.exec("VACUUM");
    }
    migrate(db);
    return new SqliteStore(db, secrets);
  } catch (e) {
    db.close();
    throw e;
  }
}
