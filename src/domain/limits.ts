// DPS's limits (behaviors.md §9) as Provisio enforces them: rates per provisioning service (per
// unit), device polling per device, and counts. 0 means unlimited. Pure.

export interface Limits {
  /** Register calls per minute per provisioning service, all units together. */
  registrationsPerMinute: number;
  /** Service API operations per minute per provisioning service, all units together. */
  serviceOperationsPerMinute: number;
  /** Status lookups (operation and registration) per device in 10 seconds. */
  pollsPer10Seconds: number;
  /** Registration records per provisioning service. */
  maxRegistrations: number;
  /** Individual enrollments per provisioning service. */
  maxEnrollments: number;
  /** Enrollment groups per provisioning service, per attestation type. */
  maxX509Groups: number;
  maxSymmetricKeyGroups: number;
  /** CA certificates per provisioning service. */
  maxCaCertificates: number;
  /** Linked IoT hubs per provisioning service. */
  maxLinkedHubs: number;
  /** IP filter rules per provisioning service. */
  maxIpFilterRules: number;
}

/** No limit: what a 0 setting means. */
export const unlimited = (limit: number): boolean => limit <= 0;

/** Whether one more would pass the limit, with `count` already there. */
export const wouldExceed = (count: number, limit: number): boolean => !unlimited(limit) && count >= limit;
