// The provisioning service's storage, shaped by the paths that use it (as Eclipse Hono's registry
// separates its adapter and management stores):
// - DevicePathStore: what a registration reads and writes, on the hot path;
// - EnrollmentStore: the service API (enrollments, groups, registration states);
// - InstanceStore: the management API (instances, policies, linked hubs, CA certificates).
// The built-in hub has its own interface (hub-store.ts). Several implementations (sqlite/ now,
// postgres/ later) are held to test/store/store-conformance.ts. Secrets (symmetric keys, policy
// keys, hub connection strings) are encrypted by the implementation before they reach disk, and
// every committed change to what caches hold is announced on `changes` (store-changes.ts).
import type { RegistrationAttempt } from "../domain/attempt.js";
import type { AuditEvent, AuditQuery, StoredAuditEvent } from "../domain/audit.js";
import type { EnrollmentGroup, IndividualEnrollment } from "../domain/enrollment.js";
import type { HubIntent } from "../domain/hub-intent.js";
import type { IdScope } from "../domain/ids.js";
import type { AccessPolicy, CaCertificate, Instance, LinkedHub } from "../domain/instance.js";
import type { RegistrationOperation } from "../domain/operation.js";
import type { RegistrationRecord } from "../domain/registration-state.js";
import type { TpmChallenge } from "../domain/tpm-challenge.js";
import type { Page, PageRequest, Precondition, WriteResult } from "./records.js";
import type { StoreChanges } from "./store-changes.js";

export type { Page, PageRequest, Precondition, WriteRefusal, WriteResult } from "./records.js";

/** What an instance update may replace along with the instance itself. */
export interface InstanceParts {
  policies?: AccessPolicy[];
  hubs?: LinkedHub[];
}

/** Instances and their configuration records (management path). */
export interface InstanceStore {
  /** The instance with its policies (and linked hubs, if given), in one transaction. */
  createInstance(instance: Instance, policies: AccessPolicy[], hubs?: LinkedHub[]): Promise<WriteResult>;
  /** The instance, and in the same transaction its policies and linked hubs when given (each replaced whole). */
  updateInstance(instance: Instance, precondition?: Precondition, replace?: InstanceParts): Promise<WriteResult>;
  /** Removes the instance and every record it owns. */
  deleteInstance(idScope: IdScope): Promise<boolean>;
  getInstance(idScope: IdScope): Promise<Instance | undefined>;
  listInstances(): Promise<Instance[]>;

  listPolicies(idScope: IdScope): Promise<AccessPolicy[]>;
  getPolicy(idScope: IdScope, keyName: string): Promise<AccessPolicy | undefined>;
  /** Replaces the whole set of policies of an instance. */
  replacePolicies(idScope: IdScope, policies: AccessPolicy[]): Promise<void>;

  listLinkedHubs(idScope: IdScope): Promise<LinkedHub[]>;
  /** Replaces the whole set of linked hubs of an instance. */
  replaceLinkedHubs(idScope: IdScope, hubs: LinkedHub[]): Promise<void>;

  listCaCertificates(idScope: IdScope): Promise<CaCertificate[]>;
  getCaCertificate(idScope: IdScope, name: string): Promise<CaCertificate | undefined>;
  putCaCertificate(idScope: IdScope, cert: CaCertificate, precondition?: Precondition): Promise<WriteResult>;
  /**
   * Adds a CA certificate in one atomic step: refused with "exists" when its name is taken and with
   * "full" when the instance already holds `limit` certificates (concurrent adds cannot overshoot).
   */
  addCaCertificate(
    idScope: IdScope,
    cert: CaCertificate,
    limit: number,
  ): Promise<WriteResult | { ok: false; reason: "full" }>;
  deleteCaCertificate(idScope: IdScope, name: string, precondition?: Precondition): Promise<WriteResult>;
}

/** Enrollments, groups and registration states (service API). */
export interface EnrollmentStore {
  getEnrollment(idScope: IdScope, registrationId: string): Promise<IndividualEnrollment | undefined>;
  putEnrollment(idScope: IdScope, e: IndividualEnrollment, precondition?: Precondition): Promise<WriteResult>;
  deleteEnrollment(idScope: IdScope, registrationId: string, precondition?: Precondition): Promise<WriteResult>;
  listEnrollments(idScope: IdScope, page: PageRequest): Promise<Page<IndividualEnrollment>>;

  getGroup(idScope: IdScope, groupId: string): Promise<EnrollmentGroup | undefined>;
  putGroup(idScope: IdScope, g: EnrollmentGroup, precondition?: Precondition): Promise<WriteResult>;
  deleteGroup(idScope: IdScope, groupId: string, precondition?: Precondition): Promise<WriteResult>;
  listGroups(idScope: IdScope, page: PageRequest): Promise<Page<EnrollmentGroup>>;

  getRegistration(idScope: IdScope, registrationId: string): Promise<RegistrationRecord | undefined>;
  putRegistration(idScope: IdScope, r: RegistrationRecord, precondition?: Precondition): Promise<WriteResult>;
  deleteRegistration(idScope: IdScope, registrationId: string, precondition?: Precondition): Promise<WriteResult>;
  listRegistrationsOfGroup(idScope: IdScope, groupId: string, page: PageRequest): Promise<Page<RegistrationRecord>>;
  /** Every registration record of the service, by id (Provisio extension, for the console). */
  listRegistrations(idScope: IdScope, page: PageRequest): Promise<Page<RegistrationRecord>>;
  /** How many individual enrollments, or registration records, a provisioning service holds. */
  countRecords(idScope: IdScope, what: "enrollments" | "registrations"): Promise<number>;
}

/** Everything of a scope a registration reads through its compiled view (provisioning/scope-views.ts). */
export interface ScopeRecords {
  groups: EnrollmentGroup[];
  linkedHubs: LinkedHub[];
  caCertificates: CaCertificate[];
}

export interface DeviceRecords {
  enrollment: IndividualEnrollment | undefined;
  registration: RegistrationRecord | undefined;
}

/** The hot device path: one registration's reads and writes (device-api.md §11). */
export interface DevicePathStore {
  /** The scope's groups, linked hubs and CA certificates, read together. */
  readScope(idScope: IdScope): Promise<ScopeRecords>;
  getEnrollment(idScope: IdScope, registrationId: string): Promise<IndividualEnrollment | undefined>;
  getRegistration(idScope: IdScope, registrationId: string): Promise<RegistrationRecord | undefined>;
  /** A device's individual enrollment and registration record, read together (one round trip). */
  readDevice(idScope: IdScope, registrationId: string): Promise<DeviceRecords>;

  /** Registration operations, pollable from any node (device-api.md §11.11). */
  getOperation(idScope: IdScope, operationId: string): Promise<RegistrationOperation | undefined>;
  /** `{ absent: true }` writes only if no operation has this id yet (a final result is never overwritten). */
  putOperation(idScope: IdScope, op: RegistrationOperation, precondition?: { absent: true }): Promise<WriteResult>;
  /**
   * The end of a registration: its record, its final operation and what becomes of its hub intent
   * (default: deleted), in one transaction.
   */
  commitRegistration(
    idScope: IdScope,
    record: RegistrationRecord,
    op: RegistrationOperation,
    intent?: IntentSettlement,
  ): Promise<void>;

  /** Written before a registration's first hub write (domain/hub-intent.ts). */
  putHubIntent(idScope: IdScope, intent: HubIntent): Promise<void>;
  deleteHubIntent(idScope: IdScope, operationId: string): Promise<void>;
  /**
   * Takes over up to `limit` intents whose carrier's lease ended before `now` and whose device has
   * no other registration under way: they become `node`'s until `until`.
   */
  claimHubIntents(node: string, until: string, now: string, limit: number): Promise<ClaimedHubIntent[]>;
  /** The carried operations and hub intents of `node` stay its own until `until` (ISO-8601): a lease renewal. */
  renewCarrier(node: string, until: string): Promise<void>;
  /**
   * Forget operations created before `cutoff` (ISO-8601) that are final, or whose carrier's lease
   * ended before it; returns how many. Space they held is given back to the file system.
   */
  deleteOperationsBefore(cutoff: string): Promise<number>;

  /** A TPM device's pending challenge (one a device; a new one replaces it), readable from any node. */
  putTpmChallenge(idScope: IdScope, registrationId: string, challenge: TpmChallenge): Promise<void>;
  getTpmChallenge(idScope: IdScope, registrationId: string): Promise<TpmChallenge | undefined>;
}

/**
 * What commitRegistration does with the registration's hub intent: deletes it (the hubs are as
 * the record says), keeps it (a migration still has to delete the old identity), or releases it
 * to be settled by any node after `until` (a failed hub write may yet land).
 */
export type IntentSettlement = "delete" | "keep" | { releaseUntil: string };

export interface ClaimedHubIntent {
  idScope: IdScope;
  intent: HubIntent;
}

/** Register calls refused before any work (domain/attempt.ts), kept apart from records, bounded. */
export interface RefusedAttemptStore {
  addRefusedAttempt(idScope: IdScope, registrationId: string, attempt: RegistrationAttempt): Promise<void>;
  /** The newest first, at most `limit`. */
  listRefusedAttempts(idScope: IdScope, registrationId: string, limit: number): Promise<RegistrationAttempt[]>;
  /** Drops those older than `cutoff`, then all but the newest `keep`. */
  trimRefusedAttempts(cutoff: string, keep: number): Promise<number>;
}

/** The audit trail (domain/audit.ts): appended to, read newest first, trimmed by age. */
export interface AuditStore {
  appendAudit(event: AuditEvent): Promise<void>;
  listAudit(query: AuditQuery): Promise<StoredAuditEvent[]>;
  deleteAuditBefore(cutoff: string): Promise<number>;
}

/** A whole provisioning store: every path, its change announcements, and closing. */
export interface ProvisioningStore
  extends InstanceStore,
    EnrollmentStore,
    DevicePathStore,
    AuditStore,
    RefusedAttemptStore {
  readonly changes: StoreChanges;
  /** Bytes the database takes (for the metrics). */
  sizeBytes(): Promise<number>;
  close(): Promise<void>;
}
