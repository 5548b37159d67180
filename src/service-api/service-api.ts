// The DPS service API (service-api.md §2): enrollments, enrollment groups, registration states,
// queries and bulk operations, authenticated with the instance's shared access policies or bearer tokens.
import type { IncomingMessage } from "node:http";
import { ATTEMPTS_KEPT } from "../domain/attempt.js";
import type { EnrollmentGroup, IndividualEnrollment } from "../domain/enrollment.js";
import { attestationWire, enrollmentWire } from "../domain/enrollment-wire.js";
import { ProvisioError } from "../domain/errors.js";
import { etagMatches } from "../domain/etag.js";
import { type IdScope, isValidRegistrationId } from "../domain/ids.js";
import type { Right } from "../domain/instance.js";
import { parseJson } from "../domain/json.js";
import type { DeviceRegistrationState } from "../domain/registration-state.js";
import type { ServiceRequest } from "../http/api-request.js";
import { readBody } from "../http/body.js";
import { keepPrefixed, pageHeaders, pageRequest, prefixedPage } from "../http/paging.js";
import { sendJson, sendNoContent } from "../http/respond.js";
import type { DiagnosticFilter, DiagnosticLog } from "../observability/diagnostic-log.js";
import type { ServiceAuthenticator } from "../security/service-auth.js";
import type { EnrollmentStore, RefusedAttemptStore } from "../store/store.js";
import { runBulk } from "./bulk.js";
import { type EnrollmentKind, groupKind, individualKind } from "./enrollment-kinds.js";
import { type EnrollmentLimits, EnrollmentQuotas } from "./enrollment-quotas.js";

/** Operations of the provisioning engine the service API offers. */
export interface ProvisioningOperations {
  /** Remove a registered device's identity from its assigned hub (an absent identity is fine). */
  deprovision(idScope: IdScope, state: DeviceRegistrationState): Promise<void>;
  /** What a registration would do now, without side effects. */
  dryRun(idScope: IdScope, registrationId: string, body: unknown): Promise<Record<string, unknown>>;
}

export const SERVICE_API_SEGMENTS = new Set([
  "enrollments",
  "enrollmentgroups",
  "registrations",
  "diagnostics",
  // Provisio extensions for the console and scripts: who the caller is, and how much is stored.
  "caller",
  "statistics",
]);

/**
 * A query body must be JSON, but its text is not read: DPS lists everything, paged, whatever it
 * says (the Azure CLI sends `[{"query": "SELECT *"}]`, the SDKs `{"query": "*"}`).
 */
async function readQuerySpecification(req: IncomingMessage): Promise<void> {
  parseJson(await readBody(req));
}

function checkId(kind: "registration" | "group", id: string): void {
  if (isValidRegistrationId(id)) return; // groups follow the same rule (behaviors.md §1.2)
  throw new ProvisioError(kind === "registration" ? "invalidRegistrationId" : "invalidEnrollmentGroupId", { id });
}

type AnyKind = EnrollmentKind<IndividualEnrollment> | EnrollmentKind<EnrollmentGroup>;

/** Groups are few (tens, not thousands): counted by listing them. */
async function countGroups(store: Pick<EnrollmentStore, "listGroups">, scope: IdScope): Promise<number> {
  let n = 0;
  let after: string | undefined;
  do {
    const p = await store.listGroups(scope, { limit: 1000, ...(after !== undefined ? { after } : {}) });
    n += p.items.length;
    after = p.next;
  } while (after !== undefined);
  return n;
}

const ifMatchOf = (req: IncomingMessage): string | undefined => {
  const v = req.headers["if-match"];
  return v === undefined || v === "" ? undefined : v;
};

/** Retries of an unconditional write that raced another writer. */
const WRITE_ATTEMPTS = 3;

export interface ServiceApiParts {
  store: EnrollmentStore & Pick<RefusedAttemptStore, "listRefusedAttempts">;
  /** Policies' SAS tokens, and bearer tokens when an issuer is configured. */
  auth: ServiceAuthenticator;
  /** Told about unexpected errors that a reply reports without throwing (bulk items). */
  onInternal?: (err: unknown) => void;
  /** What the service API asks of the provisioning engine (deprovisioning, dry runs). */
  provisioning?: ProvisioningOperations;
  /** The recent diagnostic lines (GET /diagnostics); none when not given. */
  diagnostics?: Pick<DiagnosticLog, "recent">;
  /** Enrollment count quotas; none: unlimited. */
  limits?: EnrollmentLimits;
}

export class ServiceApi {
  private readonly store: EnrollmentStore & Pick<RefusedAttemptStore, "listRefusedAttempts">;
  private readonly auth: ServiceAuthenticator;
  private readonly onInternal: ((err: unknown) => void) | undefined;
  private readonly provisioning: ProvisioningOperations | undefined;
  private readonly diagnostics: Pick<DiagnosticLog, "recent"> | undefined;
  private readonly quotas: EnrollmentQuotas | undefined;

  constructor(parts: ServiceApiParts) {
    this.store = parts.store;
    this.auth = parts.auth;
    this.onInternal = parts.onInternal;
    this.provisioning = parts.provisioning;
    this.diagnostics = parts.diagnostics;
    this.quotas = parts.limits && new EnrollmentQuotas(parts.store, parts.limits);
  }

  async handle(r: ServiceRequest): Promise<void> {
    const { req, path } = r;
    const [collection, id, action] = path.lower;
    const method = req.method ?? "GET";
    const extra = path.segments.length > 3;
    const origId = path.segments[1] ?? "";

    if (collection === "enrollments" || collection === "enrollmentgroups") {
      const kind: AnyKind = collection === "enrollments" ? individualKind : groupKind;
      if (id === undefined && method === "POST") return this.bulk(r, kind);
      if (id === "query" && action === undefined && method === "POST") return this.query(r, kind);
      // An id outside DPS's rules can name nothing: 400 before anything is read (behaviors.md §1.1-1.2).
      if (id !== undefined && !extra) checkId(kind === individualKind ? "registration" : "group", origId);
      if (id !== undefined && action === undefined) {
        if (method === "GET") return this.get(r, kind, origId);
        if (method === "PUT") {
          return kind === individualKind ? this.put(r, individualKind, origId) : this.put(r, groupKind, origId);
        }
        if (method === "DELETE") return this.delete(r, kind, origId);
      }
      if (id !== undefined && action === "attestationmechanism" && !extra && method === "POST") {
        return this.attestationMechanism(r, kind, origId);
      }
    } else if (collection === "diagnostics" && id === undefined && method === "GET") {
      return this.recentDiagnostics(r);
    } else if (collection === "caller" && id === undefined && method === "GET") {
      return this.callerOf(r);
    } else if (collection === "statistics" && id === undefined && method === "GET") {
      return this.statistics(r);
    } else if (collection === "registrations" && id !== undefined) {
      // POST /registrations/query: every record (Provisio extension; DPS lists only a group's).
      if (id === "query" && action === undefined && method === "POST") return this.queryAllRegistrations(r);
      if (!extra) checkId(action === "query" ? "group" : "registration", origId);
      if (action === undefined && method === "GET") return this.getRegistration(r, origId);
      if (action === undefined && method === "DELETE") return this.deleteRegistration(r, origId);
      if (action === "query" && !extra && method === "POST") return this.queryRegistrations(r, origId);
      if (action === "webhookcalls" && !extra && method === "GET") return this.webhookCalls(r, origId);
      if (action === "attempts" && !extra && method === "GET") return this.attempts(r, origId);
      if (action === "dryrun" && !extra && method === "POST") return this.dryRun(r, origId);
    }
    const known = collection !== undefined && SERVICE_API_SEGMENTS.has(collection) && !extra;
    throw new ProvisioError(known ? "methodNotAllowed" : "unknownRoute", {
      method,
      path: `/${path.segments.join("/")}`,
    });
  }

  private async authorize(r: ServiceRequest, right: Right): Promise<IdScope> {
    await this.auth.authorize(r, right);
    return r.instance.idScope;
  }

  private async get(r: ServiceRequest, kind: AnyKind, id: string): Promise<void> {
    const scope = await this.authorize(r, "EnrollmentRead");
    if (kind === individualKind) {
      const e = await this.store.getEnrollment(scope, id);
      if (!e) throw new ProvisioError(kind.notFound, { id });
      // An individual enrollment GET carries its registration state, or a stub (service-api.md §3.2).
      const reg = await this.store.getRegistration(scope, id);
      const state = reg?.state ?? { registrationId: e.registrationId, status: "unassigned" as const };
      return sendJson(r.res, 200, enrollmentWire(e, false, state));
    }
    const g = await this.store.getGroup(scope, id);
    if (!g) throw new ProvisioError(kind.notFound, { id });
    sendJson(r.res, 200, groupKind.wire(g, false));
  }

  private async put<T extends IndividualEnrollment | EnrollmentGroup>(
    r: ServiceRequest,
    kind: EnrollmentKind<T>,
    id: string,
  ): Promise<void> {
    const scope = await this.authorize(r, "EnrollmentWrite");
    const body = parseJson(await readBody(r.req));
    const ifMatch = ifMatchOf(r.req);
    for (let attempt = 1; ; attempt++) {
      const existing = await kind.get(this.store, scope, id);
      // If-Match on a missing record, or a stale one: 412 (service-api.md §6).
      if (ifMatch && (!existing || !etagMatches(ifMatch, existing.etag))) {
        throw new ProvisioError("etagMismatch", { id });
      }
      const record = kind.fromBody(body, id, existing);
      if (!existing) await this.quotas?.checkNew(r.instance, record);
      const pre = existing ? { etag: ifMatch ?? existing.etag } : ({ absent: true } as const);
      const result = await kind.put(this.store, scope, record, pre);
      if (result.ok) {
        return sendJson(r.res, 200, kind.wire(record, true));
      }
      if (ifMatch || attempt >= WRITE_ATTEMPTS) throw new ProvisioError("etagMismatch", { id });
    }
  }

  private async delete(r: ServiceRequest, kind: AnyKind, id: string): Promise<void> {
    const scope = await this.authorize(r, "EnrollmentWrite");
    const ifMatch = ifMatchOf(r.req);
    const result = await kind.delete(this.store, scope, id, ifMatch ? { etag: ifMatch } : undefined);
    if (result.ok) {
      // An individual enrollment's registration record goes with it; a group's records stay
      // (behaviors.md §7.2).
      if (kind === individualKind) await this.store.deleteRegistration(scope, id);
      return sendNoContent(r.res);
    }
    if (result.reason === "missing") throw new ProvisioError(kind.notFound, { id });
    throw new ProvisioError("etagMismatch", { id });
  }

  private async attestationMechanism(r: ServiceRequest, kind: AnyKind, id: string): Promise<void> {
    const scope = await this.authorize(r, "EnrollmentRead");
    const record = await kind.get(this.store, scope, id);
    if (!record) throw new ProvisioError(kind.notFound, { id });
    // Keys included: this is the documented way to read them (service-api.md §3.4).
    // `?includeCertificates=true` (a Provisio extension, for `provisio export`): the PEMs too.
    const withPem = /^true$/i.test(r.path.query.get("includeCertificates") ?? "");
    sendJson(r.res, 200, withPem ? record.attestation : attestationWire(record.attestation, true));
  }

  private async query(r: ServiceRequest, kind: AnyKind): Promise<void> {
    const scope = await this.authorize(r, "EnrollmentRead");
    await readQuerySpecification(r.req);
    const prefix = r.path.query.get("prefix") ?? undefined;
    const page = pageRequest(r.req.headers);
    const from = prefixedPage(page, prefix);
    const result =
      kind === individualKind
        ? await this.store.listEnrollments(scope, from).then((p) => {
            const kept = keepPrefixed(p, prefix, (e) => e.registrationId);
            return { next: kept.next, items: kept.items.map((e) => individualKind.wire(e, false)) };
          })
        : await this.store.listGroups(scope, from).then((p) => {
            const kept = keepPrefixed(p, prefix, (g) => g.enrollmentGroupId);
            return { next: kept.next, items: kept.items.map((g) => groupKind.wire(g, false)) };
          });
    sendJson(r.res, 200, result.items, pageHeaders(kind.itemType, result.next, page.limit));
  }

  /** GET /caller: the service this host names and the caller's rights (Provisio extension). */
  private async callerOf(r: ServiceRequest): Promise<void> {
    const caller = await this.auth.authenticate(r);
    const i = r.instance;
    if (caller.kind === "policy" && i.disableLocalAuth) {
      // As for every data-plane call: a policy is not a way in to such an instance.
      throw new ProvisioError("unauthorized", {
        detail: `shared access policies are disabled for '${i.name}' (disableLocalAuth); use a bearer token of the OpenID Connect issuer`,
      });
    }
    sendJson(r.res, 200, {
      service: { name: i.name, idScope: i.idScope, hostName: i.hostName },
      caller: {
        kind: caller.kind,
        name: caller.name,
        ...(caller.displayName !== undefined ? { displayName: caller.displayName } : {}),
        rights: caller.rights,
      },
    });
  }

  /** GET /statistics: how many enrollments, groups and registration records (Provisio extension). */
  private async statistics(r: ServiceRequest): Promise<void> {
    const scope = await this.authorize(r, "EnrollmentRead");
    const [individualEnrollments, registrations, groups] = await Promise.all([
      this.store.countRecords(scope, "enrollments"),
      this.store.countRecords(scope, "registrations"),
      countGroups(this.store, scope),
    ]);
    sendJson(r.res, 200, { individualEnrollments, enrollmentGroups: groups, registrations });
  }

  private async queryAllRegistrations(r: ServiceRequest): Promise<void> {
    const scope = await this.authorize(r, "RegistrationStatusRead");
    await readQuerySpecification(r.req);
    const prefix = r.path.query.get("prefix") ?? undefined;
    const page = pageRequest(r.req.headers);
    const p = await this.store.listRegistrations(scope, prefixedPage(page, prefix));
    const kept = keepPrefixed(p, prefix, (x) => x.state.registrationId);
    sendJson(
      r.res,
      200,
      kept.items.map((x) => x.state),
      pageHeaders("DeviceRegistration", kept.next, page.limit),
    );
  }

  private async bulk(r: ServiceRequest, kind: AnyKind): Promise<void> {
    const scope = await this.authorize(r, "EnrollmentWrite");
    const body = parseJson(await readBody(r.req));
    const quotas = this.quotas;
    const beforeCreate =
      quotas && ((record: IndividualEnrollment | EnrollmentGroup) => quotas.checkNew(r.instance, record));
    const result =
      kind === individualKind
        ? await runBulk(this.store, scope, individualKind, body, this.onInternal, beforeCreate)
        : await runBulk(this.store, scope, groupKind, body, this.onInternal, beforeCreate);
    sendJson(r.res, 200, result);
  }

  private async getRegistration(r: ServiceRequest, id: string): Promise<void> {
    const scope = await this.authorize(r, "RegistrationStatusRead");
    const reg = await this.store.getRegistration(scope, id);
    if (!reg) throw new ProvisioError("registrationNotFound", { id });
    sendJson(r.res, 200, reg.state);
  }

  private async deleteRegistration(r: ServiceRequest, id: string): Promise<void> {
    const scope = await this.authorize(r, "RegistrationStatusWrite");
    const ifMatch = ifMatchOf(r.req);
    // `?deprovision=true` also removes the device from the hub it was assigned to (Provisio extension).
    // The hub goes first: if it refuses, the record stays and the call can be repeated.
    const deprovision = /^(true|1|yes)$/i.test(r.path.query.get("deprovision") ?? "");
    if (deprovision && this.provisioning) {
      const before = await this.store.getRegistration(scope, id);
      if (!before) throw new ProvisioError("registrationNotFound", { id });
      if (ifMatch && !etagMatches(ifMatch, before.state.etag)) throw new ProvisioError("etagMismatch", { id });
      await this.provisioning.deprovision(scope, before.state);
    }
    const result = await this.store.deleteRegistration(scope, id, ifMatch ? { etag: ifMatch } : undefined);
    if (result.ok) return sendNoContent(r.res);
    if (result.reason === "missing") throw new ProvisioError("registrationNotFound", { id });
    throw new ProvisioError("etagMismatch", { id });
  }

  /** Provisio extension: what registering `id` would do now (no side effects). */
  private async dryRun(r: ServiceRequest, id: string): Promise<void> {
    const scope = await this.authorize(r, "EnrollmentRead");
    if (!this.provisioning)
      throw new ProvisioError("unknownRoute", { method: "POST", path: `/registrations/${id}/dryRun` });
    const body = parseJson(await readBody(r.req));
    sendJson(r.res, 200, await this.provisioning.dryRun(scope, id, body));
  }

  /** Provisio extension: the custom allocation webhook calls of the device's last registration. */
  /**
   * GET /diagnostics?category=&id=&result=&since= — this node's recent DeviceOperations and
   * ServiceOperations lines for the instance (README "Diagnostic logs"); a Provisio extension.
   */
  private async recentDiagnostics(r: ServiceRequest): Promise<void> {
    await this.authorize(r, "RegistrationStatusRead");
    const q = r.path.query;
    const given = (name: string) => q.get(name) ?? undefined;
    const since = given("since");
    if (since !== undefined && Number.isNaN(Date.parse(since))) {
      throw new ProvisioError("invalidQueryParameter", { name: "since", detail: "use an ISO-8601 time" });
    }
    const filter: DiagnosticFilter = { service: r.instance.name };
    for (const key of ["category", "id", "result"] as const) {
      const value = given(key);
      if (value !== undefined) filter[key] = value;
    }
    if (since !== undefined) filter.since = new Date(since).toISOString();
    sendJson(r.res, 200, this.diagnostics?.recent(filter) ?? []);
  }

  private async webhookCalls(r: ServiceRequest, id: string): Promise<void> {
    const scope = await this.authorize(r, "RegistrationStatusRead");
    const reg = await this.store.getRegistration(scope, id);
    if (!reg) throw new ProvisioError("registrationNotFound", { id });
    sendJson(r.res, 200, reg.webhookCalls ?? []);
  }

  /**
   * The device's last register calls, newest first, step by step: those kept with its record and
   * those refused before any work (a device never admitted has only these).
   */
  private async attempts(r: ServiceRequest, id: string): Promise<void> {
    const scope = await this.authorize(r, "RegistrationStatusRead");
    const [reg, refused] = await Promise.all([
      this.store.getRegistration(scope, id),
      this.store.listRefusedAttempts(scope, id, ATTEMPTS_KEPT),
    ]);
    if (!reg && refused.length === 0) throw new ProvisioError("registrationNotFound", { id });
    const all = [...(reg?.attempts ?? []), ...refused].sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
    sendJson(r.res, 200, all.slice(0, 2 * ATTEMPTS_KEPT));
  }

  private async queryRegistrations(r: ServiceRequest, groupId: string): Promise<void> {
    const scope = await this.authorize(r, "RegistrationStatusRead");
    await readQuerySpecification(r.req);
    const page = pageRequest(r.req.headers);
    const result = await this.store.listRegistrationsOfGroup(scope, groupId, page);
    sendJson(
      r.res,
      200,
      result.items.map((x) => x.state),
      pageHeaders("DeviceRegistration", result.next, page.limit),
    );
  }
}
