// Who called the service or management API, once authenticated (security/service-auth.ts).
import type { Right } from "./instance.js";

export interface Caller {
  /** A shared access policy, or a bearer token of the OpenID Connect issuer. */
  kind: "policy" | "token";
  /** The policy's name, or the token's `sub`. */
  name: string;
  /** A token's readable name, when it has one. */
  displayName?: string;
  rights: readonly Right[];
}
