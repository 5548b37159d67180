// A provisioning service instance and its configuration records, management.md §1-5.
import type { IdScope } from "./ids.js";
import type { IpFilterRule } from "./ip-filter.js";

import { RIGHTS, type Right } from "./rights.js";

export { RIGHTS, type Right };

export type InstanceAllocationPolicy = "hashed" | "geoLatency" | "static";

export interface Instance {
  idScope: IdScope;
  name: string;
  /** The service API host name (Host header and SAS `sr`). */
  hostName: string;
  allocationPolicy: InstanceAllocationPolicy;
  createdDateTimeUtc: string;
  etag: string;
  /**
   * Where devices are, for lowest-latency allocation: the first rule whose IPv4 mask matches a
   * device's source address gives its location (a Provisio setting; Azure uses its own tables).
   */
  deviceLocationRules?: { ipMask: string; location: string }[];
  /** Who may reach the device and service APIs (management.md §4.1); absent: everyone. */
  ipFilterRules?: IpFilterRule[];
  /** `Disabled`: only the operator's private networks, rules ignored (management.md §4.2). */
  publicNetworkAccess?: "Enabled" | "Disabled";
  /**
   * true: the service API refuses shared access policies' SAS tokens, only bearer tokens get in
   * (management.md §1, `disableLocalAuth`); the management API keeps taking SAS.
   */
  disableLocalAuth?: boolean;
  /** Create-only; holds trivially, since nothing leaves this server (management.md §1). */
  enableDataResidency?: boolean;
}

export interface AccessPolicy {
  keyName: string;
  primaryKey: string;
  secondaryKey: string;
  rights: Right[];
}

export interface LinkedHub {
  /** Hub host name from the connection string's HostName; the identifier. */
  name: string;
  connectionString: string;
  location: string;
  allocationWeight: number;
  applyAllocationPolicy: boolean;
}

export interface CaCertificate {
  name: string;
  certificatePem: string;
  subject: string;
  thumbprint: string;
  expiry: string;
  isVerified: boolean;
  verificationCode?: string;
  created: string;
  updated: string;
  etag: string;
}

/** Parse "ServiceConfig, EnrollmentRead,..." case-insensitively, de-duplicated (management.md §3). */
export function parseRights(text: string): Right[] | undefined {
  const out = new Set<Right>();
  for (const part of text.split(",")) {
    const word = part.trim().toLowerCase();
    if (word === "") continue;
    const right = RIGHTS.find((r) => r.toLowerCase() === word);
    if (!right) return undefined;
    out.add(right);
  }
  return out.size > 0 ? [...out] : undefined;
}

export const formatRights = (rights: readonly Right[]): string => rights.join(", ");

/** Does a policy grant `right`? A Write right implies its Read (service-api.md §9.3). */
export function grants(rights: readonly Right[], right: Right): boolean {
  if (rights.includes(right)) return true;
  if (right === "EnrollmentRead") return rights.includes("EnrollmentWrite");
  if (right === "RegistrationStatusRead") return rights.includes("RegistrationStatusWrite");
  return false;
}
