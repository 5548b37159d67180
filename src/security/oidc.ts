// Bearer tokens on the service and management APIs (behaviors.md §10.4): where DPS takes Azure AD
// tokens, Provisio takes any OpenID Connect issuer's. A token is a JWT signed with a key of the
// issuer's JWKS (found through its discovery document, cached, fetched again for an unknown key),
// for an accepted audience, within its lifetime; its role or group claims map to DPS's data roles.
import { createRemoteJWKSet, errors, type JWTPayload, jwtVerify } from "jose";
import { ProvisioError } from "../domain/errors.js";
import type { Right } from "../domain/instance.js";

/** DPS's two data-plane roles, and the management API's ServiceConfig. */
export type DataRole = "contributor" | "reader" | "config";
export const DATA_ROLES: readonly DataRole[] = ["contributor", "reader", "config"];

/** What each role may do, in the rights of shared access policies (service-api.md §9.3). */
export const ROLE_RIGHTS: Record<DataRole, readonly Right[]> = {
  contributor: ["EnrollmentRead", "EnrollmentWrite", "RegistrationStatusRead", "RegistrationStatusWrite"],
  reader: ["EnrollmentRead", "RegistrationStatusRead"],
  config: ["ServiceConfig"],
};

export interface OidcOptions {
  issuer: string;
  /** A token's `aud` must be one of these. */
  audiences: string[];
  /** Where the signing keys are; default: the `jwks_uri` of the issuer's discovery document. */
  jwksUrl: string | undefined;
  /** The claims holding role or group names, in the order read. */
  roleClaims: string[];
  /** Claim value → role. */
  roles: Record<string, DataRole>;
}

export interface TokenCaller {
  /** `sub`, the stable id of the person or workload. */
  subject: string;
  /** A readable name when the token has one (preferred_username, upn, name). */
  displayName: string | undefined;
  rights: Right[];
}

const ISSUER_RETRY_AFTER_SECONDS = 5;

/** Clock difference tolerated between the issuer and this server. */
const CLOCK_TOLERANCE_S = 60;

/** http only for an issuer on this machine (tests, a local IdP); elsewhere https. */
export function checkIssuerUrl(value: string, what: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`${what} must be an https:// URL, not '${value}'.`);
  }
  const loopback = ["127.0.0.1", "[::1]", "localhost"].includes(url.hostname);
  if (url.protocol !== "https:" && !(url.protocol === "http:" && loopback)) {
    throw new Error(`${what} must be an https:// URL (http only on loopback), not '${value}'.`);
  }
  return value;
}

/** `Value=role,…`: which claim values grant which role. */
export function parseRoleMapping(text: string, what: string): Record<string, DataRole> {
  const out: Record<string, DataRole> = {};
  for (const entry of text
    .split(",")
    .map((e) => e.trim())
    .filter((e) => e !== "")) {
    const eq = entry.lastIndexOf("=");
    const role = entry.slice(eq + 1).toLowerCase() as DataRole;
    if (eq <= 0 || !DATA_ROLES.includes(role)) {
      throw new Error(`${what} must list claimValue=${DATA_ROLES.join("|")} entries, not '${entry}'.`);
    }
    out[entry.slice(0, eq)] = role;
  }
  return out;
}

const claimValues = (payload: JWTPayload, claim: string): string[] => {
  const v = payload[claim];
  if (typeof v === "string") return v.split(" ").filter((x) => x !== ""); // `scp` style
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
};

export class OidcVerifier {
  private keys: Promise<ReturnType<typeof createRemoteJWKSet>> | undefined;

  constructor(private readonly options: OidcOptions) {}

  /** The caller a bearer token names, or the 401/503 a DPS client understands. */
  async verify(token: string): Promise<TokenCaller> {
    let payload: JWTPayload;
    try {
      const keys = await this.jwks();
      ({ payload } = await jwtVerify(token, keys, {
        issuer: this.options.issuer,
        audience: this.options.audiences,
        clockTolerance: CLOCK_TOLERANCE_S,
        requiredClaims: ["sub", "exp"],
      }));
    } catch (err) {
      throw this.refusal(err);
    }
    const rights = new Set<Right>();
    for (const claim of this.options.roleClaims) {
      for (const value of claimValues(payload, claim)) {
        const role = this.options.roles[value];
        if (role) for (const r of ROLE_RIGHTS[role]) rights.add(r);
      }
    }
    const name = payload.preferred_username ?? payload.upn ?? payload.name;
    return {
      subject: payload.sub as string,
      displayName: typeof name === "string" ? name : undefined,
      rights: [...rights],
    };
  }

  private jwks(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    this.keys ??= this.discover().catch((err: unknown) => {
      this.keys = undefined; // the next request tries again
      throw err;
    });
    return this.keys;
  }

  private async discover(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    let url = this.options.jwksUrl;
    if (!url) {
      const at = `${this.options.issuer.replace(/\/$/, "")}/.well-known/openid-configuration`;
      const reply = await fetch(at, { signal: AbortSignal.timeout(5_000) });
      if (!reply.ok) throw new errors.JOSEError(`${at} answered ${reply.status}`);
      const doc = (await reply.json()) as { issuer?: unknown; jwks_uri?: unknown };
      if (typeof doc.jwks_uri !== "string") throw new errors.JOSEError(`${at} names no jwks_uri`);
      url = doc.jwks_uri;
    }
    // Keys are kept ten minutes; a token signed with a key not yet seen fetches them again
    // (at most every 5 s), so the issuer's key rotation needs no restart.
    return createRemoteJWKSet(new URL(url), { cacheMaxAge: 600_000, cooldownDuration: 5_000, timeoutDuration: 5_000 });
  }

  private refusal(err: unknown): ProvisioError {
    const unauthorized = (detail: string) => new ProvisioError("unauthorized", { detail });
    // The issuer's trouble, not the caller's: try again shortly.
    const unavailable = (detail: string) =>
      new ProvisioError("identityProviderUnavailable", { detail }, ISSUER_RETRY_AFTER_SECONDS);
    if (err instanceof errors.JWTExpired) {
      const exp = err.payload.exp;
      return new ProvisioError("bearerExpired", {
        expiry: typeof exp === "number" ? new Date(exp * 1000).toISOString() : "an earlier time",
      });
    }
    if (err instanceof errors.JWTClaimValidationFailed) {
      if (err.claim === "iss") return unauthorized(`the bearer token is not from the issuer ${this.options.issuer}`);
      if (err.claim === "aud") {
        return unauthorized(
          `the bearer token is not for this service (audience ${this.options.audiences.join(" or ")})`,
        );
      }
      return unauthorized(`the bearer token's ${err.claim} claim does not hold: ${err.reason}`);
    }
    if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWSSignatureVerificationFailed) {
      return unauthorized("the bearer token's signature does not verify with the issuer's keys");
    }
    if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid || err instanceof TypeError) {
      return unavailable((err as Error).message);
    }
    if (err instanceof errors.JOSEError && /answered|names no jwks_uri|Expected 200/.test(err.message)) {
      return unavailable(err.message);
    }
    if (err instanceof errors.JOSEError) return unauthorized(`the bearer token is not a valid JWT (${err.message})`);
    return new ProvisioError("identityProviderUnavailable", {
      detail: err instanceof Error ? err.message : String(err),
    });
  }
}
