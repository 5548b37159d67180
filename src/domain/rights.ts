// The rights of DPS's shared access policies (management.md §3), on their own: the web console
// reads this list in the browser, where the rest of domain/instance.ts cannot go.
export const RIGHTS = [
  "ServiceConfig",
  "EnrollmentRead",
  "EnrollmentWrite",
  "RegistrationStatusRead",
  "RegistrationStatusWrite",
  "DeviceConnect",
] as const;
export type Right = (typeof RIGHTS)[number];
