// Individual enrollments and enrollment groups share every service operation; a kind says what
// differs (path segment, id field, errors, storage calls), so handlers are written once.
import type { EnrollmentGroup, IndividualEnrollment } from "../domain/enrollment.js";
import { enrollmentWire, groupWire } from "../domain/enrollment-wire.js";
import type { ErrorName } from "../domain/errors.js";
import type { IdScope } from "../domain/ids.js";
import type { EnrollmentStore, Page, PageRequest, Precondition, WriteResult } from "../store/store.js";
import { enrollmentGroupFromBody, individualEnrollmentFromBody } from "./enrollment-body.js";

export interface EnrollmentKind<T extends IndividualEnrollment | EnrollmentGroup> {
  /** Lower-cased first path segment. */
  segment: "enrollments" | "enrollmentgroups";
  idField: "registrationId" | "enrollmentGroupId";
  /** `x-ms-item-type` of query replies. */
  itemType: "Enrollment" | "EnrollmentGroup";
  /** Key of the item list in a bulk body. */
  bulkField: "enrollments" | "enrollmentGroups";
  notFound: ErrorName;
  exists: ErrorName;
  idOf(record: T): string;
  fromBody(body: unknown, pathId: string, existing: T | undefined): T;
  wire(record: T, withKeys: boolean): Record<string, unknown>;
  get(store: EnrollmentStore, scope: IdScope, id: string): Promise<T | undefined>;
  put(store: EnrollmentStore, scope: IdScope, record: T, pre: Precondition): Promise<WriteResult>;
  delete(store: EnrollmentStore, scope: IdScope, id: string, pre: Precondition): Promise<WriteResult>;
  list(store: EnrollmentStore, scope: IdScope, page: PageRequest): Promise<Page<T>>;
}

export const individualKind: EnrollmentKind<IndividualEnrollment> = {
  segment: "enrollments",
  idField: "registrationId",
  itemType: "Enrollment",
  bulkField: "enrollments",
  notFound: "enrollmentNotFound",
  exists: "enrollmentExists",
  idOf: (e) => e.registrationId,
  fromBody: individualEnrollmentFromBody,
  wire: (e, withKeys) => enrollmentWire(e, withKeys),
  get: (s, scope, id) => s.getEnrollment(scope, id),
  put: (s, scope, e, pre) => s.putEnrollment(scope, e, pre),
  delete: (s, scope, id, pre) => s.deleteEnrollment(scope, id, pre),
  list: (s, scope, page) => s.listEnrollments(scope, page),
};

export const groupKind: EnrollmentKind<EnrollmentGroup> = {
  segment: "enrollmentgroups",
  idField: "enrollmentGroupId",
  itemType: "EnrollmentGroup",
  bulkField: "enrollmentGroups",
  notFound: "enrollmentGroupNotFound",
  exists: "enrollmentGroupExists",
  idOf: (g) => g.enrollmentGroupId,
  fromBody: enrollmentGroupFromBody,
  wire: groupWire,
  get: (s, scope, id) => s.getGroup(scope, id),
  put: (s, scope, g, pre) => s.putGroup(scope, g, pre),
  delete: (s, scope, id, pre) => s.deleteGroup(scope, id, pre),
  list: (s, scope, page) => s.listGroups(scope, page),
};
