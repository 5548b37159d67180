// Service-side authentication (service-api.md §9, behaviors.md §10.4): a SAS token signed with a
// shared access policy of the instance, or, when an OpenID Connect issuer is configured, a bearer
// token of that issuer. Either way the caller comes out with rights to check.
import type { IncomingHttpHeaders } from "node:http";
import { expiredReason, isExpired, parseSasToken, signatureMatches, tokenResource } from "../attestation/sas-token.js";
import type { Caller } from "../domain/caller.js";
import { ProvisioError } from "../domain/errors.js";
import type { IdScope } from "../domain/ids.js";
import { type AccessPolicy, grants, type Instance, type Right } from "../domain/instance.js";
import type { ServiceRequest } from "../http/api-request.js";
import type { OidcVerifier } from "./oidc.js";

export type PolicyLookup = (idScope: IdScope, keyName: string) => Promise<AccessPolicy | undefined>;

/** Is `resource` the host itself or a path under it, matched per segment? */
const covers = (resource: string, host: string): boolean => resource === host || resource.startsWith(`${host}/`);

/** The policy a SAS token is signed with. `requestHost` is the Host header: SDKs sign what they dial. */
export async function authenticatePolicy(
  header: string,
  instance: Instance,
  requestHost: string,
  lookup: PolicyLookup,
  nowSeconds = Math.floor(Date.now() / 1000),
): Promise<AccessPolicy> {
  const token = parseSasToken(header);
  if (!token) {
    throw new ProvisioError("unauthorized", {
      detail: "the Authorization header is not a SharedAccessSignature with sr, sig and se fields",
    });
  }
  if (!token.skn) {
    throw new ProvisioError("unauthorized", { detail: "the SAS token names no shared access policy (skn)" });
  }
  const resource = tokenResource(token);
  if (!covers(resource, requestHost) && !covers(resource, instance.hostName.toLowerCase())) {
    throw new ProvisioError("unauthorized", {
      detail: `the SAS token is for '${resource}', not for this service ('${instance.hostName}'): use a connection string whose HostName is this service's (\`provisio connection-string show\`)`,
    });
  }
  const policy = await lookup(instance.idScope, token.skn);
  if (!policy || !signatureMatches(token, [policy.primaryKey, policy.secondaryKey])) {
    // One message for both: do not reveal which policy names exist.
    throw new ProvisioError("unauthorized", {
      detail: `the SAS signature does not verify with the keys of a policy named '${token.skn}'`,
    });
  }
  if (isExpired(token, nowSeconds)) {
    throw new ProvisioError("tokenExpired", { reason: expiredReason(token, nowSeconds) });
  }
  return policy;
}

export class ServiceAuthenticator {
  constructor(
    private readonly lookup: PolicyLookup,
    /** Bearer tokens are taken only when an issuer is configured. */
    private readonly oidc?: OidcVerifier,
    private readonly roleClaims: readonly string[] = [],
  ) {}

  /** The caller of a request, also kept on it (the audit trail reads it there). */
  async authenticate(r: ServiceRequest): Promise<Caller> {
    const caller = await this.callerOf(r.req.headers, r.instance, r.host);
    r.caller = caller;
    return caller;
  }

  /**
   * Authenticated, and allowed `right`; else 401. On the data plane an instance with
   * disableLocalAuth takes bearer tokens only; the management API (control) always takes SAS.
   */
  async authorize(r: ServiceRequest, right: Right, plane: "data" | "control" = "data"): Promise<Caller> {
    const caller = await this.authenticate(r);
    if (plane === "data" && caller.kind === "policy" && r.instance.disableLocalAuth) {
      throw new ProvisioError("unauthorized", {
        detail: `shared access policies are disabled for '${r.instance.name}' (disableLocalAuth); use a bearer token of the OpenID Connect issuer`,
      });
    }
    if (!grants(caller.rights, right)) {
      if (caller.kind === "policy") throw new ProvisioError("missingRight", { policy: caller.name, right });
      throw new ProvisioError("missingRole", {
        subject: caller.displayName ?? caller.name,
        right,
        claims: this.roleClaims.join(" and "),
      });
    }
    return caller;
  }

  private async callerOf(headers: IncomingHttpHeaders, instance: Instance, host: string): Promise<Caller> {
    const header = headers.authorization;
    if (!header) throw new ProvisioError("missingToken");
    const bearer = /^bearer\s+(\S+)\s*$/i.exec(header);
    if (bearer) {
      if (!this.oidc) {
        throw new ProvisioError("unauthorized", {
          detail:
            "bearer tokens are not accepted here (no OpenID Connect issuer is configured: PROVISIO_OIDC_ISSUER); sign a SharedAccessSignature with a shared access policy key",
        });
      }
      const t = await this.oidc.verify(bearer[1] as string);
      return {
        kind: "token",
        name: t.subject,
        ...(t.displayName ? { displayName: t.displayName } : {}),
        rights: t.rights,
      };
    }
    const policy = await authenticatePolicy(header, instance, host, this.lookup);
    return { kind: "policy", name: policy.keyName, rights: policy.rights };
  }
}
