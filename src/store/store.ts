// The Store: every persistent record of every provisioning service instance.
// One interface, several implementations (sqlite/ now, postgres/ later), all checked by the
// conformance suite in test/store/store-conformance.ts. Methods are async so a networked
// database fits behind the same interface.
//
// The store holds records in plain form; secrets (symmetric keys, policy keys, hub connection
// strings) are encrypted by the implementation before they reach disk.
import type { EnrollmentGroup, IndividualEnrollment } from "../domain/enrollment.js";
import type { IdScope } from "../domain/ids.js";
import type { AccessPolicy, CaCertificate, Instance, LinkedHub } from "../domain/instance.js";
import type { RegistrationOperation } from "../domain/operation.js";
import type { RegistrationRecord } from "../domain/registration-state.js";
import type { HubStore } from "./hub-store.js";

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

/** Enrollments, groups and registration states (service API and device path). */
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
}

/** Registration operations, pollable from any node (device-api.md §11.11). */
export interface OperationStore {
  getOperation(idScope: IdScope, operationId: string): Promise<RegistrationOperation | undefined>;
  /** `{ absent: true }` writes only if no operation has this id yet (a final result is never overwritten). */
  putOperation(idScope: IdScope, op: RegistrationOperation, precondition?: { absent: true }): Promise<WriteResult>;
  /** The end of a registration: its record and its final operation, in one transaction. */
  commitRegistration(idScope: IdScope, record: RegistrationRecord, op: RegistrationOperation): Promise<void>;
  /** Forget operations created before `cutoff` (ISO-8601); returns how many. */
  deleteOperationsBefore(cutoff: string): Promise<number>;
}

export interface Store extends InstanceStore, EnrollmentStore, HubStore, OperationStore {
  close(): Promise<void>;
}
