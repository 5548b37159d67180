// Which enrollment a device's registration goes through (behaviors.md §3): the one type every
// mechanism, the allocation and the records use.
import type { EnrollmentGroup, EnrollmentSettings, IndividualEnrollment } from "./enrollment.js";

export type EnrollmentMatch =
  | { kind: "individual"; enrollment: IndividualEnrollment }
  | { kind: "group"; group: EnrollmentGroup };

/** What individual enrollments and groups share: policies, hubs, twin, status. */
export const settingsOf = (m: EnrollmentMatch): EnrollmentSettings =>
  m.kind === "individual" ? m.enrollment : m.group;

/** The hub device id (behaviors.md §1.3): an individual enrollment's deviceId, else the registration id. */
export const deviceIdOf = (m: EnrollmentMatch, registrationId: string): string =>
  m.kind === "individual" ? (m.enrollment.deviceId ?? registrationId) : registrationId;
