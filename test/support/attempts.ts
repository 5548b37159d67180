// What GET /registrations/{id}/attempts shows, as the acceptance tests expect it.

/** The steps every admitted register call passes before allocation (registration-steps.ts). */
export const ADMITTED_STEPS = [
  "checkRequest passed",
  "findCandidates passed",
  "attestDevice passed",
  "tpmKeysSent passed",
  "injectFault passed",
  "throttle passed",
  "recordQuota passed",
  "injectedDelay passed",
  "readPrevious passed",
];
