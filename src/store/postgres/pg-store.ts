// The provisioning store on PostgreSQL (node-postgres): the same interfaces and conformance suite
// as the SQLite store, for several nodes sharing one database. One pool a node. The device path
// costs one round trip a call: a scope's records are read in one statement (one snapshot), and a
// registration's record and final operation are written in one statement.
// Changes are announced to this node's caches and, through LISTEN/NOTIFY, to every other node
// (pg-changes.ts).
import { randomUUID } from "node:crypto";
import pg from "pg";
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
  caMapping,
  decodeAudit,
  decodeHubIntent,
  decodeOperation,
  encodeAudit,
  encodeHubIntent,
  encodeOperation,
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
import { CHANGES_CHANNEL, notifyChange, PgListener, parseWireChange } from "./pg-changes.js";
import { HUB_EVENTS_CHANNEL, PgHubStore } from "./pg-hub-store.js";
import { migratePostgres } from "./pg-migrations.js";
import { inTransaction, isUniqueViolation, PgRegistrationRows, PgRows, PgVersionedRows } from "./pg-rows.js";

export class PostgresStore implements ProvisioningStore {
  readonly changes = new ChangePublisher();
  readonly hubs: PgHubStore;
  /** This node, so that it does not hear its own announcements twice. */
  readonly node = randomUUID();
  readonly #pool: pg.Pool;
  readonly #listener: PgListener;
  readonly #policies: PgRows<AccessPolicy>;
  readonly #linked: PgRows<LinkedHub>;
  readonly #cas = new PgVersionedRows(caMapping);
  readonly #enrollments: PgVersionedRows<IndividualEnrollment>;
  readonly #groups: PgVersionedRows<EnrollmentGroup>;
  readonly #registrations = new PgRegistrationRows();
  readonly #secrets: SecretBox;

  constructor(url: string, pool: pg.Pool, secrets: SecretBox, options: PostgresOptions = {}) {
    this.#pool = pool;
    this.#secrets = secrets;
    this.hubs = new PgHubStore(pool, secrets, this.node);
    this.#listener = new PgListener(
      url,
      {
        [CHANGES_CHANNEL]: (payload) => {
          const wire = parseWireChange(payload);
          if (wire && wire.node !== this.node) return this.hearOther(wire.change);
        },
        [HUB_EVENTS_CHANNEL]: (payload) => this.hubs.hear(payload),
      },
      () => this.changes.publish({ kind: "resync" }),
      options.onListenerEvent,
    );
    this.#policies = new PgRows(
      splitMapping<AccessPolicy, "primaryKey" | "secondaryKey">(
        secrets,
        "access_policies",
        "access policy",
        (p) => p.keyName,
        ["primaryKey", "secondaryKey"],
      ),
    );
    this.#linked = new PgRows(
      splitMapping<LinkedHub, "connectionString">(secrets, "linked_hubs", "linked hub", (h) => h.name, [
        "connectionString",
      ]),
    );
    this.#enrollments = new PgVersionedRows(
      settingsMapping<IndividualEnrollment>(secrets, "enrollments", "enrollment", (e) => e.registrationId),
    );
    this.#groups = new PgVersionedRows(
      settingsMapping<EnrollmentGroup>(secrets, "enrollment_groups", "enrollment group", (g) => g.enrollmentGroupId),
    );
  }

  /** Starts hearing the other nodes. */
  listen(): Promise<void> {
    return this.#listener.start();
  }

  /** The pool, for the pieces of a cluster that share it (rate limits, shared settings). */
  get pool(): pg.Pool {
    return this.#pool;
  }

  /** One transaction on one client of the pool. */
  async #tx<R>(work: (c: pg.PoolClient) => Promise<R>): Promise<R> {
    const c = await this.#pool.connect();
    try {
      return await inTransaction(c, () => work(c));
    } finally {
      c.release();
    }
  }

  // --- Instances ---

  async createInstance(instance: Instance, policies: AccessPolicy[], hubs?: LinkedHub[]): Promise<WriteResult> {
    const r = await this.#tx(async (c) => {
      try {
        await c.query("SAVEPOINT insert_instance");
        await c.query(
          "INSERT INTO instances (id_scope, name_key, host_key, etag, doc) VALUES ($1, $2, $3, $4, $5)",
          instanceValues(instance),
        );
      } catch (e) {
        // The scope, the name or the host name is taken (primary key, unique constraints).
        if (isUniqueViolation(e)) return refused("exists");
        throw e;
      }
      await this.#policies.replaceAll(c, instance.idScope, policies);
      if (hubs) await this.#linked.replaceAll(c, instance.idScope, hubs);
      return OK;
    });
    if (r.ok) await this.announce({ kind: "instance", idScope: instance.idScope, instance });
    return r;
  }

  async updateInstance(
    instance: Instance,
    precondition?: Precondition,
    replace: InstanceParts = {},
  ): Promise<WriteResult> {
    const r = await this.#tx(async (c) => {
      const etagOf = async () =>
        (await c.query<{ etag: string }>("SELECT etag FROM instances WHERE id_scope = $1", [instance.idScope])).rows[0];
      // An update never creates: a missing instance is refused whatever the precondition.
      if (precondition !== undefined && "absent" in precondition) {
        return refused((await etagOf()) ? "exists" : "missing");
      }
      const expected = precondition === undefined ? "*" : bareEtag(precondition.etag);
      const [scope, name, host, etag, doc] = instanceValues(instance);
      let changed: number | null;
      try {
        const sql =
          "UPDATE instances SET name_key = $2, host_key = $3, etag = $4, doc = $5 WHERE id_scope = $1" +
          (expected === "*" ? "" : " AND etag = $6");
        const values = [scope, name, host, etag, doc, ...(expected === "*" ? [] : [expected])];
        changed = (await c.query(sql, values)).rowCount;
      } catch (e) {
        if (isUniqueViolation(e)) return refused("exists");
        throw e;
      }
      if (changed === 0) return refused((await etagOf()) ? "etagMismatch" : "missing");
      if (replace.policies) await this.#policies.replaceAll(c, instance.idScope, replace.policies);
      if (replace.hubs) await this.#linked.replaceAll(c, instance.idScope, replace.hubs);
      return OK;
    });
    if (!r.ok) return r;
    await this.announce({ kind: "instance", idScope: instance.idScope, instance });
    if (replace.hubs) await this.announce({ kind: "scope", idScope: instance.idScope, what: "linkedHubs" });
    if (replace.policies) await this.announce({ kind: "scope", idScope: instance.idScope, what: "policies" });
    return r;
  }

  async deleteInstance(idScope: IdScope): Promise<boolean> {
    const { rowCount } = await this.#pool.query("DELETE FROM instances WHERE id_scope = $1", [idScope]);
    const deleted = rowCount === 1;
    if (deleted) await this.announce({ kind: "instance", idScope });
    return deleted;
  }

  async getInstance(idScope: IdScope): Promise<Instance | undefined> {
    const { rows } = await this.#pool.query<{ doc: string }>("SELECT doc FROM instances WHERE id_scope = $1", [
      idScope,
    ]);
    return rows[0] && (JSON.parse(rows[0].doc) as Instance);
  }

  async listInstances(): Promise<Instance[]> {
    const { rows } = await this.#pool.query<{ doc: string }>("SELECT doc FROM instances ORDER BY name_key");
    return rows.map((row) => JSON.parse(row.doc) as Instance);
  }

  async listPolicies(idScope: IdScope): Promise<AccessPolicy[]> {
    return this.#policies.all(this.#pool, idScope);
  }

  async getPolicy(idScope: IdScope, keyName: string): Promise<AccessPolicy | undefined> {
    return this.#policies.get(this.#pool, idScope, keyName);
  }

  async replacePolicies(idScope: IdScope, policies: AccessPolicy[]): Promise<void> {
    await this.#tx((c) => this.#policies.replaceAll(c, idScope, policies));
    await this.announce({ kind: "scope", idScope, what: "policies" });
  }

  async listLinkedHubs(idScope: IdScope): Promise<LinkedHub[]> {
    return this.#linked.all(this.#pool, idScope);
  }

  async replaceLinkedHubs(idScope: IdScope, hubs: LinkedHub[]): Promise<void> {
    await this.#tx((c) => this.#linked.replaceAll(c, idScope, hubs));
    await this.announce({ kind: "scope", idScope, what: "linkedHubs" });
  }

  async listCaCertificates(idScope: IdScope): Promise<CaCertificate[]> {
    return this.#cas.all(this.#pool, idScope);
  }

  async getCaCertificate(idScope: IdScope, name: string): Promise<CaCertificate | undefined> {
    return this.#cas.get(this.#pool, idScope, name);
  }

  async putCaCertificate(idScope: IdScope, cert: CaCertificate, precondition?: Precondition): Promise<WriteResult> {
    return this.announced(await this.#cas.put(this.#pool, idScope, cert, precondition), {
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
    // The instance row is locked first: concurrent adds to one instance take turns, so the count
    // they check cannot be overshot (SQLite gets this from its single writer).
    const r = await this.#tx(async (c): Promise<WriteResult | { ok: false; reason: "full" }> => {
      await c.query("SELECT 1 FROM instances WHERE id_scope = $1 FOR UPDATE", [idScope]);
      // A taken name is "exists" even when the store is full: the caller then needs an update.
      if (await this.#cas.get(c, idScope, cert.name)) return refused("exists");
      const { rows } = await c.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM ca_certificates WHERE id_scope = $1",
        [idScope],
      );
      if ((rows[0]?.n ?? 0) >= limit) return { ok: false, reason: "full" };
      await this.#cas.upsert(c, idScope, cert);
      return OK;
    });
    if (r.ok) await this.announce({ kind: "scope", idScope, what: "caCertificates" });
    return r;
  }

  async deleteCaCertificate(idScope: IdScope, name: string, precondition?: Precondition): Promise<WriteResult> {
    return this.announced(await this.#cas.remove(this.#pool, idScope, name, precondition), {
      kind: "scope",
      idScope,
      what: "caCertificates",
    });
  }

  // --- Enrollments, groups, registration states ---

  async getEnrollment(idScope: IdScope, registrationId: string): Promise<IndividualEnrollment | undefined> {
    return this.#enrollments.get(this.#pool, idScope, registrationId);
  }

  async putEnrollment(idScope: IdScope, e: IndividualEnrollment, precondition?: Precondition): Promise<WriteResult> {
    return this.#enrollments.put(this.#pool, idScope, e, precondition);
  }

  async deleteEnrollment(idScope: IdScope, registrationId: string, precondition?: Precondition): Promise<WriteResult> {
    return this.#enrollments.remove(this.#pool, idScope, registrationId, precondition);
  }

  async listEnrollments(idScope: IdScope, page: PageRequest): Promise<Page<IndividualEnrollment>> {
    return this.#enrollments.page(this.#pool, idScope, page);
  }

  async getGroup(idScope: IdScope, groupId: string): Promise<EnrollmentGroup | undefined> {
    return this.#groups.get(this.#pool, idScope, groupId);
  }

  async putGroup(idScope: IdScope, g: EnrollmentGroup, precondition?: Precondition): Promise<WriteResult> {
    return this.announced(await this.#groups.put(this.#pool, idScope, g, precondition), {
      kind: "scope",
      idScope,
      what: "groups",
    });
  }

  async deleteGroup(idScope: IdScope, groupId: string, precondition?: Precondition): Promise<WriteResult> {
    return this.announced(await this.#groups.remove(this.#pool, idScope, groupId, precondition), {
      kind: "scope",
      idScope,
      what: "groups",
    });
  }

  async listGroups(idScope: IdScope, page: PageRequest): Promise<Page<EnrollmentGroup>> {
    return this.#groups.page(this.#pool, idScope, page);
  }

  async getRegistration(idScope: IdScope, registrationId: string): Promise<RegistrationRecord | undefined> {
    return this.#registrations.get(this.#pool, idScope, registrationId);
  }

  async putRegistration(idScope: IdScope, r: RegistrationRecord, precondition?: Precondition): Promise<WriteResult> {
    return this.#registrations.put(this.#pool, idScope, r, precondition);
  }

  async deleteRegistration(
    idScope: IdScope,
    registrationId: string,
    precondition?: Precondition,
  ): Promise<WriteResult> {
    return this.#registrations.remove(this.#pool, idScope, registrationId, precondition);
  }

  async listRegistrationsOfGroup(
    idScope: IdScope,
    groupId: string,
    page: PageRequest,
  ): Promise<Page<RegistrationRecord>> {
    return this.#registrations.ofGroup(this.#pool, idScope, groupId, page);
  }

  async listRegistrations(idScope: IdScope, page: PageRequest): Promise<Page<RegistrationRecord>> {
    return this.#registrations.page(this.#pool, idScope, page);
  }

  // --- The device path ---

  async readScope(idScope: IdScope): Promise<ScopeRecords> {
    // One statement is one snapshot: a view compiled from it never mixes two versions of the scope.
    const { rows } = await this.#pool.query<{ kind: string; key: string; doc: string; sealed: string | null }>({
      name: "provisio_read_scope",
      text: `SELECT 'g' AS kind, key, doc, sealed FROM enrollment_groups WHERE id_scope = $1
             UNION ALL SELECT 'h', key, doc, sealed FROM linked_hubs WHERE id_scope = $1
             UNION ALL SELECT 'c', key, doc, NULL FROM ca_certificates WHERE id_scope = $1
             ORDER BY 1, 2`,
      values: [idScope],
    });
    const records: ScopeRecords = { groups: [], linkedHubs: [], caCertificates: [] };
    for (const row of rows) {
      if (row.kind === "g") records.groups.push(this.#groups.decode(idScope, row));
      else if (row.kind === "h") records.linkedHubs.push(this.#linked.decode(idScope, row));
      else records.caCertificates.push(this.#cas.decode(idScope, row));
    }
    return records;
  }

  async readDevice(idScope: IdScope, registrationId: string): Promise<DeviceRecords> {
    // One statement, one round trip: the enrollment and the record of the same key.
    const { rows } = await this.#pool.query<{ kind: string; key: string; doc: string; sealed: string | null }>({
      name: "provisio_read_device",
      text: `SELECT 'e' AS kind, key, doc, sealed FROM enrollments WHERE id_scope = $1 AND key = $2
             UNION ALL SELECT 'r', key, doc, NULL FROM registration_states WHERE id_scope = $1 AND key = $2`,
      values: [idScope, idKey(registrationId)],
    });
    const records: DeviceRecords = { enrollment: undefined, registration: undefined };
    for (const row of rows) {
      if (row.kind === "e") records.enrollment = this.#enrollments.decode(idScope, row);
      else records.registration = this.#registrations.decode(idScope, row);
    }
    return records;
  }

  async getOperation(idScope: IdScope, operationId: string): Promise<RegistrationOperation | undefined> {
    const { rows } = await this.#pool.query<{ doc: string; carrier: string | null; carried_until: string | null }>({
      name: "provisio_get_operation",
      text: "SELECT doc, carrier, carried_until FROM operations WHERE id_scope = $1 AND operation_id = $2",
      values: [idScope, operationId],
    });
    const row = rows[0];
    return row && decodeOperation(row.doc, row.carrier, row.carried_until);
  }

  async putOperation(
    idScope: IdScope,
    op: RegistrationOperation,
    precondition?: { absent: true },
  ): Promise<WriteResult> {
    const { doc, carrier, until } = encodeOperation(op);
    const values = [idScope, op.operationId, op.createdDateTimeUtc, doc, carrier, until];
    const insert =
      "INSERT INTO operations (id_scope, operation_id, created, doc, carrier, carried_until) VALUES ($1, $2, $3, $4, $5, $6)";
    if (precondition?.absent) {
      const { rowCount } = await this.#pool.query(`${insert} ON CONFLICT DO NOTHING`, values);
      return rowCount === 1 ? OK : refused("exists");
    }
    await this.#pool.query(
      `${insert} ON CONFLICT (id_scope, operation_id) DO UPDATE SET doc = excluded.doc, carrier = excluded.carrier, carried_until = excluded.carried_until`,
      values,
    );
    return OK;
  }

  async commitRegistration(
    idScope: IdScope,
    record: RegistrationRecord,
    op: RegistrationOperation,
    intent: IntentSettlement = "delete",
  ): Promise<void> {
    // One statement, so one round trip and atomic: the record upsert and the intent's settling as
    // data-modifying CTEs. A final operation has no carrier any more.
    const values: unknown[] = this.#registrations.values(idScope, record);
    const n = values.length;
    values.push(op.operationId, op.createdDateTimeUtc, encodeOperation(op).doc);
    let settle = "";
    if (intent === "delete") {
      settle = `, intent AS (DELETE FROM hub_intents WHERE id_scope = $1 AND operation_id = $${n + 1})`;
    } else if (intent !== "keep") {
      values.push(intent.releaseUntil);
      settle = `, intent AS (UPDATE hub_intents SET carrier = '', carried_until = $${n + 4} WHERE id_scope = $1 AND operation_id = $${n + 1})`;
    }
    await this.#pool.query({
      name: `provisio_commit_registration_${typeof intent === "string" ? intent : "release"}`,
      text: `WITH registration AS (${this.#registrations.upsertSql})${settle}
             INSERT INTO operations (id_scope, operation_id, created, doc) VALUES ($1, $${n + 1}, $${n + 2}, $${n + 3})
             ON CONFLICT (id_scope, operation_id) DO UPDATE SET doc = excluded.doc, carrier = NULL, carried_until = NULL`,
      values,
    });
  }

  async putHubIntent(idScope: IdScope, intent: HubIntent): Promise<void> {
    const { doc, carrier, until } = encodeHubIntent(intent);
    await this.#pool.query({
      name: "provisio_put_hub_intent",
      text: `INSERT INTO hub_intents (id_scope, operation_id, registration_key, doc, carrier, carried_until) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (id_scope, operation_id) DO UPDATE SET doc = excluded.doc, carrier = excluded.carrier, carried_until = excluded.carried_until`,
      values: [idScope, intent.operationId, idKey(intent.registrationId), doc, carrier, until],
    });
  }

  async deleteHubIntent(idScope: IdScope, operationId: string): Promise<void> {
    await this.#pool.query("DELETE FROM hub_intents WHERE id_scope = $1 AND operation_id = $2", [idScope, operationId]);
  }

  async claimHubIntents(node: string, until: string, now: string, limit: number): Promise<ClaimedHubIntent[]> {
    // SKIP LOCKED: nodes reconciling at once take different intents. Not while another
    // registration of the same device is under way: it may be writing the same identity.
    const { rows } = await this.#pool.query<{ id_scope: string; doc: string; carrier: string; carried_until: string }>(
      `UPDATE hub_intents SET carrier = $1, carried_until = $2
       WHERE (id_scope, operation_id) IN (
         SELECT i.id_scope, i.operation_id FROM hub_intents i
         WHERE i.carried_until < $3 AND NOT EXISTS (
           SELECT 1 FROM hub_intents o WHERE o.id_scope = i.id_scope AND o.registration_key = i.registration_key
             AND o.operation_id <> i.operation_id AND o.carried_until >= $3)
         ORDER BY i.carried_until LIMIT $4 FOR UPDATE SKIP LOCKED)
       RETURNING id_scope, doc, carrier, carried_until`,
      [node, until, now, limit],
    );
    return rows.map(decodeHubIntent);
  }

  async renewCarrier(node: string, until: string): Promise<void> {
    await this.#pool.query(
      `WITH operations_renewed AS (UPDATE operations SET carried_until = $1 WHERE carrier = $2)
       UPDATE hub_intents SET carried_until = $1 WHERE carrier = $2`,
      [until, node],
    );
  }

  async deleteOperationsBefore(cutoff: string): Promise<number> {
    // Dead rows are reclaimed by PostgreSQL's autovacuum.
    const { rowCount } = await this.#pool.query(
      "DELETE FROM operations WHERE created < $1 AND (carrier IS NULL OR carried_until < $1)",
      [cutoff],
    );
    return rowCount ?? 0;
  }

  async countRecords(idScope: IdScope, what: "enrollments" | "registrations"): Promise<number> {
    const table = what === "enrollments" ? "enrollments" : "registration_states";
    const { rows } = await this.#pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${table} WHERE id_scope = $1`,
      [idScope],
    );
    return rows[0]?.n ?? 0;
  }

  async addRefusedAttempt(idScope: IdScope, registrationId: string, attempt: RegistrationAttempt): Promise<void> {
    await this.#pool.query(
      "INSERT INTO refused_attempts (id_scope, registration_key, at, doc) VALUES ($1, $2, $3, $4)",
      [idScope, idKey(registrationId), attempt.at, JSON.stringify(attempt)],
    );
  }

  async listRefusedAttempts(idScope: IdScope, registrationId: string, limit: number): Promise<RegistrationAttempt[]> {
    const { rows } = await this.#pool.query<{ doc: string }>(
      "SELECT doc FROM refused_attempts WHERE id_scope = $1 AND registration_key = $2 ORDER BY seq DESC LIMIT $3",
      [idScope, idKey(registrationId), limit],
    );
    return rows.map((r) => JSON.parse(r.doc) as RegistrationAttempt);
  }

  async trimRefusedAttempts(cutoff: string, keep: number): Promise<number> {
    const old = await this.#pool.query("DELETE FROM refused_attempts WHERE at < $1", [cutoff]);
    const over = await this.#pool.query(
      "DELETE FROM refused_attempts WHERE seq <= (SELECT seq FROM refused_attempts ORDER BY seq DESC LIMIT 1 OFFSET $1)",
      [keep],
    );
    return (old.rowCount ?? 0) + (over.rowCount ?? 0);
  }

  async appendAudit(event: AuditEvent): Promise<void> {
    await this.#pool.query(
      "INSERT INTO audit_events (at, service, caller_name, doc) VALUES ($1, $2, $3, $4)",
      encodeAudit(event),
    );
  }

  async listAudit(query: AuditQuery): Promise<StoredAuditEvent[]> {
    const { sql, values } = auditSelect(query);
    let n = 0;
    const numbered = sql.replace(/\?/g, () => `$${++n}`);
    const { rows } = await this.#pool.query<{ seq: string; doc: string }>(numbered, values);
    return rows.map(decodeAudit);
  }

  async deleteAuditBefore(cutoff: string): Promise<number> {
    return (await this.#pool.query("DELETE FROM audit_events WHERE at < $1", [cutoff])).rowCount ?? 0;
  }

  async sizeBytes(): Promise<number> {
    const { rows } = await this.#pool.query<{ n: string }>("SELECT pg_database_size(current_database()) AS n");
    return Number(rows[0]?.n ?? 0);
  }

  async putTpmChallenge(idScope: IdScope, registrationId: string, c: TpmChallenge): Promise<void> {
    await this.#pool.query(
      `INSERT INTO tpm_challenges (id_scope, registration_key, sealed, ek_hash, expires) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (id_scope, registration_key) DO UPDATE SET sealed = excluded.sealed, ek_hash = excluded.ek_hash, expires = excluded.expires`,
      [idScope, idKey(registrationId), this.#secrets.seal(c.key), c.endorsementKeyHash, c.expiresAt],
    );
  }

  async getTpmChallenge(idScope: IdScope, registrationId: string): Promise<TpmChallenge | undefined> {
    const { rows } = await this.#pool.query<{ sealed: string; ek_hash: string; expires: string }>(
      "SELECT sealed, ek_hash, expires FROM tpm_challenges WHERE id_scope = $1 AND registration_key = $2",
      [idScope, idKey(registrationId)],
    );
    const row = rows[0];
    return row && { key: this.#secrets.open(row.sealed), endorsementKeyHash: row.ek_hash, expiresAt: row.expires };
  }

  /**
   * A change another node committed, told to this node's caches. An instance change carries only
   * the scope on the wire: the record is read here (absent: it was deleted).
   */
  async hearOther(change: StoreChange): Promise<void> {
    if (change.kind === "instance") {
      const instance = await this.getInstance(change.idScope);
      await this.changes.publish(instance ? { ...change, instance } : { kind: "instance", idScope: change.idScope });
      return;
    }
    await this.changes.publish(change);
  }

  /**
   * A secret every node shares (the development CA, the master-key check): whichever node asks
   * first creates it, the others read that one. Sealed with the master key like every secret.
   */
  async sharedSecret(name: string, create: () => Promise<string>): Promise<string> {
    const read = async () =>
      (await this.#pool.query<{ value: string }>("SELECT value FROM shared_settings WHERE name = $1", [name])).rows[0];
    let row = await read();
    if (!row) {
      const value = this.#secrets.seal(await create());
      await this.#pool.query("INSERT INTO shared_settings (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING", [
        name,
        value,
      ]);
      row = await read();
    }
    if (!row) throw new Error(`The shared setting '${name}' could not be written.`);
    return this.#secrets.open(row.value);
  }

  async readSharedSecret(name: string): Promise<string | undefined> {
    const { rows } = await this.#pool.query<{ value: string }>("SELECT value FROM shared_settings WHERE name = $1", [
      name,
    ]);
    return rows[0] && this.#secrets.open(rows[0].value);
  }

  async writeSharedSecret(name: string, value: string): Promise<void> {
    await this.#pool.query(
      "INSERT INTO shared_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
      [name, this.#secrets.seal(value)],
    );
  }

  /** Runs `work` while no other node runs work under the same name (a session advisory lock). */
  async exclusively<R>(name: string, work: () => Promise<R>): Promise<R> {
    const c = await this.#pool.connect();
    try {
      await c.query("SELECT pg_advisory_lock(hashtext($1))", [name]);
      try {
        return await work();
      } finally {
        await c.query("SELECT pg_advisory_unlock(hashtext($1))", [name]);
      }
    } finally {
      c.release();
    }
  }

  /** This node's caches first, then every other node's (which re-read what they need). */
  private async announce(change: StoreChange): Promise<void> {
    await this.changes.publish(change);
    await notifyChange(this.#pool, this.node, change);
  }

  private async announced(r: WriteResult, change: StoreChange): Promise<WriteResult> {
    if (r.ok) await this.announce(change);
    return r;
  }

  async close(): Promise<void> {
    await this.#listener.stop();
    await this.#pool.end();
  }
}

function instanceValues(i: Instance): string[] {
  return [i.idScope, idKey(i.name), idKey(i.hostName), i.etag, JSON.stringify(i)];
}

export interface PostgresOptions {
  /** Connections in this node's pool. */
  maxConnections?: number;
  /** Reports a lost LISTEN connection and its recovery. */
  onListenerEvent?: (event: "lost" | "recovered", err?: unknown) => void;
}

/** Connects, brings the schema up to date (once across nodes), and starts hearing other nodes. */
export async function openPostgresStore(
  url: string,
  secrets: SecretBox,
  options: PostgresOptions = {},
): Promise<PostgresStore> {
  const pool = new pg.Pool({ connectionString: url, max: options.maxConnections ?? 10 });
  // An idle client that loses its server must not crash the process; the next query reconnects.
  pool.on("error", () => undefined);
  try {
    const c = await pool.connect();
    try {
      await migratePostgres(c);
    } finally {
      c.release();
    }
    const store = new PostgresStore(url, pool, secrets, options);
    await store.listen();
    return store;
  } catch (e) {
    await pool.end().catch(() => undefined);
    throw e;
  }
}
