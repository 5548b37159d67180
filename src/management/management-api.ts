// The management API: provisioning service instances with their access policies and linked
// hubs, in the shape of the ARM resource (management.md §1-3). Paths work with or without the
// ARM prefix `/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Devices`.
// Callers authenticate with a ServiceConfig policy of the instance their Host names; only the
// primary instance may create, list or delete other instances.
import { isValidIpMask, normalizeLocation } from "../allocation/location-rules.js";
import { parseConnectionString } from "../domain/connection-string.js";
import { ProvisioError } from "../domain/errors.js";
import { newEtag } from "../domain/etag.js";
import { isValidInstanceName } from "../domain/ids.js";
import {
  type AccessPolicy,
  formatRights,
  type Instance,
  type InstanceAllocationPolicy,
  type LinkedHub,
  parseRights,
} from "../domain/instance.js";
import { parseIpFilterRules } from "../domain/ip-filter.js";
import { isObject, parseJson } from "../domain/json.js";
import { type Limits, unlimited } from "../domain/limits.js";
import type { ServiceRequest } from "../http/api-request.js";
import { readBody } from "../http/body.js";
import { pageHeaders, pageRequest } from "../http/paging.js";
import { sendJson } from "../http/respond.js";
import type { InstanceCache } from "../provisioning/instance-cache.js";
import type { ServiceAuthenticator } from "../security/service-auth.js";
import type { AuditStore, InstanceStore } from "../store/store.js";
import { CaCertificates } from "./ca-certificates.js";
import { newInstance, newPolicyKey, ownerPolicy } from "./instances.js";

export const MANAGEMENT_SEGMENTS = new Set(["provisioningservices", "subscriptions"]);
const MASK = "****";

const bad = (detail: string): ProvisioError => new ProvisioError("invalidBody", { detail });

const ALLOCATION: Record<string, InstanceAllocationPolicy> = {
  hashed: "hashed",
  geolatency: "geoLatency",
  static: "static",
};
const armAllocation = (p: InstanceAllocationPolicy): string => p[0]?.toUpperCase() + p.slice(1);

function maskConnectionString(cs: string): string {
  return cs.replace(/(SharedAccessKey=)[^;]*/i, `$1${MASK}`);
}

/** Strip the ARM prefix: what remains starts at `provisioningServices`. */
function resourceSegments(lower: string[], segments: string[]): { lower: string[]; segments: string[] } {
  const i = lower.indexOf("provisioningservices");
  if (lower[0] === "subscriptions" && i < 0) return { lower: [], segments: [] };
  return i <= 0 ? { lower, segments } : { lower: lower.slice(i), segments: segments.slice(i) };
}

export class ManagementApi {
  constructor(
    /** Its writes are announced to every cache by the store itself (store-changes.ts). */
    private readonly store: InstanceStore & AuditStore,
    private readonly instances: InstanceCache,
    /** ServiceConfig: a policy that has it, or a bearer token whose roles grant it. */
    private readonly auth: ServiceAuthenticator,
    private readonly options: {
      /** The listeners' TLS floor (PROVISIO_MIN_TLS_VERSION): what minTlsVersion can be. */
      minTlsVersion: "1.2" | "1.3";
      /** Whether an OpenID Connect issuer is configured: what disableLocalAuth needs. */
      bearerTokens: boolean;
      /** Counts per provisioning service (behaviors.md §9); 0 = unlimited. */
      limits: Pick<Limits, "maxLinkedHubs" | "maxIpFilterRules" | "maxCaCertificates">;
      /** Scale units, shown as sku.capacity. */
      units: number;
    } = {
      minTlsVersion: "1.2",
      bearerTokens: false,
      limits: { maxLinkedHubs: 50, maxIpFilterRules: 100, maxCaCertificates: 25 },
      units: 1,
    },
  ) {}

  async handle(r: ServiceRequest): Promise<void> {
    const method = r.req.method ?? "GET";
    const { lower, segments } = resourceSegments(r.path.lower, r.path.segments);
    const caller = await this.caller(r);
    const name = segments[1];
    if (lower.length === 1 && lower[0] === "provisioningservices" && method === "GET") {
      this.requirePrimary(caller);
      const all = this.instances.all();
      const value = await Promise.all(all.map((i) => this.resource(i)));
      return sendJson(r.res, 200, { value });
    }
    if (lower.length === 2 && name !== undefined) {
      if (method === "GET") return sendJson(r.res, 200, await this.resource(this.target(caller, name)));
      if (method === "PUT") return this.put(r, caller, name);
      if (method === "DELETE") return this.delete(r, caller, name);
    }
    if (lower.length >= 3 && name !== undefined && lower[2] === "certificates") {
      // CA certificates (management.md §5): ca-certificates.ts.
      const certificates = new CaCertificates(this.store, this.options.limits.maxCaCertificates);
      return certificates.handle(r, this.target(caller, name), segments.slice(3), lower.slice(3));
    }
    if (lower.length === 3 && name !== undefined && lower[2] === "auditevents" && method === "GET") {
      return this.auditEvents(r, caller, name);
    }
    if (lower.length === 3 && name !== undefined && lower[2] === "listkeys" && method === "POST") {
      const target = this.target(caller, name);
      const policies = await this.store.listPolicies(target.idScope);
      return sendJson(r.res, 200, { value: policies.map(policyWire) });
    }
    if (lower.length === 3 && name !== undefined && lower[2] === "listlinkedhubkeys" && method === "POST") {
      // Linked hubs with their connection strings unmasked, for `provisio export --include-secrets`
      // (a Provisio extension; ARM has no way to read them back).
      const target = this.target(caller, name);
      return sendJson(r.res, 200, { value: await this.store.listLinkedHubs(target.idScope) });
    }
    throw new ProvisioError("unknownRoute", { method, path: `/${r.path.segments.join("/")}` });
  }

  private async caller(r: ServiceRequest): Promise<Instance> {
    await this.auth.authorize(r, "ServiceConfig", "control");
    return r.instance;
  }

  /**
   * The audit trail of an instance, newest first, paged like every list (x-ms-max-item-count,
   * x-ms-continuation), filtered by `since`, `until` (ISO 8601) and `caller`. The primary
   * instance's policies may read any instance's, also one since deleted.
   */
  private async auditEvents(r: ServiceRequest, caller: Instance, name: string): Promise<void> {
    if (caller.name.toLowerCase() !== name.toLowerCase()) this.requirePrimary(caller);
    const page = pageRequest(r.req.headers);
    const q = r.path.query;
    const time = (key: "since" | "until"): string | undefined => {
      const value = q.get(key) ?? undefined;
      if (value !== undefined && Number.isNaN(Date.parse(value))) {
        throw new ProvisioError("invalidQueryParameter", { name: key, detail: "use an ISO-8601 time" });
      }
      return value === undefined ? undefined : new Date(value).toISOString();
    };
    const beforeSeq = page.after === undefined ? undefined : Number(page.after);
    if (beforeSeq !== undefined && !Number.isSafeInteger(beforeSeq)) throw new ProvisioError("invalidContinuation");
    const since = time("since");
    const until = time("until");
    const who = q.get("caller") ?? undefined;
    const rows = await this.store.listAudit({
      service: name.toLowerCase(),
      top: page.limit + 1,
      ...(beforeSeq !== undefined ? { beforeSeq } : {}),
      ...(since !== undefined ? { since } : {}),
      ...(until !== undefined ? { until } : {}),
      ...(who !== undefined ? { caller: who } : {}),
    });
    const value = rows.slice(0, page.limit);
    const next = rows.length > page.limit ? String(value.at(-1)?.seq) : undefined;
    return sendJson(r.res, 200, { value }, pageHeaders("AuditEvent", next, page.limit));
  }

  /** `disableLocalAuth`: true only where bearer tokens are taken, else nobody could get in. */
  private localAuthOf(props: Record<string, unknown>): Pick<Instance, "disableLocalAuth"> {
    const v = props.disableLocalAuth;
    if (v === undefined || v === null) return {};
    if (typeof v !== "boolean") throw bad("'disableLocalAuth' must be true or false.");
    if (v && !this.options.bearerTokens) {
      throw bad(
        "'disableLocalAuth: true' cannot be enforced without an OpenID Connect issuer (PROVISIO_OIDC_ISSUER): with shared access policies refused, no caller could reach the service API.",
      );
    }
    return { disableLocalAuth: v };
  }

  private requirePrimary(caller: Instance): void {
    if (!this.instances.isPrimary(caller.idScope)) {
      throw new ProvisioError("unauthorized", {
        detail: "only the primary provisioning service's policies may manage other instances",
      });
    }
  }

  /** The named instance, if the caller may manage it. */
  private target(caller: Instance, name: string): Instance {
    if (caller.name.toLowerCase() !== name.toLowerCase()) this.requirePrimary(caller);
    const target = this.instances.byName(name);
    if (!target) throw new ProvisioError("instanceNotFound", { name });
    return target;
  }

  private async resource(i: Instance): Promise<Record<string, unknown>> {
    const hubs = await this.store.listLinkedHubs(i.idScope);
    const primary = this.instances.primary();
    return {
      id: `/provisioningServices/${i.name}`,
      name: i.name,
      type: "Microsoft.Devices/provisioningServices",
      location: "local",
      etag: i.etag,
      sku: { name: "S1", tier: "Standard", capacity: this.options.units },
      properties: {
        state: "Active",
        provisioningState: "Succeeded",
        idScope: i.idScope,
        serviceOperationsHostName: i.hostName,
        deviceProvisioningHostName: primary?.hostName ?? i.hostName,
        allocationPolicy: armAllocation(i.allocationPolicy),
        deviceLocationRules: i.deviceLocationRules ?? [],
        iotHubs: hubs.map((h) => ({ ...h, connectionString: maskConnectionString(h.connectionString) })),
        ipFilterRules: i.ipFilterRules ?? [],
        publicNetworkAccess: i.publicNetworkAccess ?? "Enabled",
        // What every listener holds to.
        minTlsVersion: this.options.minTlsVersion,
        disableLocalAuth: i.disableLocalAuth ?? false,
        enableDataResidency: i.enableDataResidency ?? false,
        // Keys only through listkeys (management.md §1.4).
        authorizationPolicies: null,
      },
    };
  }

  private async put(r: ServiceRequest, caller: Instance, name: string): Promise<void> {
    const body = parseJson(await readBody(r.req));
    if (!isObject(body)) throw bad("The body must be a JSON object with 'properties'.");
    const props = body.properties === undefined || body.properties === null ? {} : body.properties;
    if (!isObject(props)) throw bad("'properties' must be a JSON object.");
    refuseUnenforced(props, this.options.minTlsVersion);
    const existing = this.instances.byName(name);

    if (!existing) {
      this.requirePrimary(caller);
      if (!isValidInstanceName(name)) {
        throw bad(`'${name}' is not a valid name: 3-50 letters, digits or '-', not all digits, no '-' at either end.`);
      }
      const base = this.instances.primary()?.hostName ?? "localhost";
      const hostName =
        typeof props.serviceOperationsHostName === "string" ? props.serviceOperationsHostName : `${name}.${base}`;
      const rules = locationRulesOf(props);
      const instance = {
        ...newInstance(name, hostName.toLowerCase(), allocationOf(props) ?? "hashed"),
        ...(rules ? { deviceLocationRules: rules } : {}),
        ...networkOf(props, this.options.limits.maxIpFilterRules),
        ...this.localAuthOf(props),
        ...(props.enableDataResidency === true ? { enableDataResidency: true } : {}),
      };
      const policies = policiesOf(props) ?? [ownerPolicy()];
      const hubs = hubsOf(props, [], this.options.limits.maxLinkedHubs);
      const created = await this.store.createInstance(instance, policies, hubs);
      if (!created.ok) throw new ProvisioError("instanceExists", { name });
      return sendJson(r.res, 201, await this.resource(instance));
    }

    const target = this.target(caller, name);
    if (props.idScope !== undefined && props.idScope !== target.idScope) throw bad("'idScope' cannot change.");
    const residency = props.enableDataResidency;
    if (typeof residency === "boolean" && residency !== (target.enableDataResidency ?? false)) {
      throw bad("'enableDataResidency' is set when a provisioning service is created and cannot change.");
    }
    // Validate everything before writing anything.
    const policies = policiesOf(props);
    const hubs = hubsOf(props, await this.store.listLinkedHubs(target.idScope), this.options.limits.maxLinkedHubs);
    const rules = locationRulesOf(props);
    const updated: Instance = {
      ...target,
      allocationPolicy: allocationOf(props) ?? target.allocationPolicy,
      ...(rules ? { deviceLocationRules: rules } : {}),
      ...networkOf(props, this.options.limits.maxIpFilterRules),
      ...this.localAuthOf(props),
      etag: newEtag(),
    };
    const ifMatch = r.req.headers["if-match"];
    // The instance, its policies and its hubs change together or not at all.
    const result = await this.store.updateInstance(
      updated,
      { etag: ifMatch || target.etag },
      { ...(policies ? { policies } : {}), ...(hubs ? { hubs } : {}) },
    );
    if (!result.ok) throw new ProvisioError("etagMismatch", { id: name });
    sendJson(r.res, 200, await this.resource(updated));
  }

  private async delete(r: ServiceRequest, caller: Instance, name: string): Promise<void> {
    this.requirePrimary(caller);
    const target = this.target(caller, name);
    if (this.instances.isPrimary(target.idScope)) {
      throw bad("The primary provisioning service cannot be deleted; it holds the credentials that manage the others.");
    }
    await this.store.deleteInstance(target.idScope);
    sendJson(r.res, 200, {});
  }
}

const policyWire = (p: AccessPolicy) => ({
  keyName: p.keyName,
  primaryKey: p.primaryKey,
  secondaryKey: p.secondaryKey,
  rights: formatRights(p.rights),
});

/**
 * Network settings DPS has and this version does not enforce yet (issue "Network access, TLS and
 * identity"): a setting that would be stored and not applied is refused, never silently
 * ignored, so nobody believes a fleet is fenced when it is not. Their neutral values pass (an
 * `az` round trip of GET then PUT sends them back). IP rules and public network access are
 * enforced (provisioning/network-filters.ts).
 */
function refuseUnenforced(props: Record<string, unknown>, tlsFloor: "1.2" | "1.3"): void {
  const notYet = (what: string) =>
    bad(
      `${what} is not enforced by this version of Provisio, so it is refused rather than stored and ignored. ` +
        "Leave it out (or send its default) and restrict access in front of Provisio until then.",
    );
  const tls = props.minTlsVersion;
  // Every listener refuses TLS 1.0 and 1.1, and 1.2 too when the server's floor is 1.3: what an
  // instance may ask is what the listeners already hold to (a stricter floor also satisfies 1.2).
  const enforced = tls === "1.2" || (tls === "1.3" && tlsFloor === "1.3");
  if (tls !== undefined && tls !== null && !enforced) {
    throw bad(
      `'minTlsVersion: ${String(tls)}' cannot be enforced: every provisioning service shares the listeners, which take ` +
        `TLS ${tlsFloor} and newer (1.2 or 1.3 only; start Provisio with PROVISIO_MIN_TLS_VERSION=1.3 to make 1.3 the minimum).`,
    );
  }
  const endpoints = props.privateEndpointConnections;
  if (endpoints !== undefined && endpoints !== null && !(Array.isArray(endpoints) && endpoints.length === 0)) {
    throw notYet("'privateEndpointConnections'");
  }
}

/** IP filter rules and public network access of a body; absent ones are left as they are. */
function networkOf(
  props: Record<string, unknown>,
  maxRules: number,
): Pick<Instance, "ipFilterRules" | "publicNetworkAccess"> {
  const out: Pick<Instance, "ipFilterRules" | "publicNetworkAccess"> = {};
  const rules = props.ipFilterRules ?? props.IpFilterRules;
  if (rules !== undefined && rules !== null) {
    try {
      out.ipFilterRules = parseIpFilterRules(rules, maxRules);
    } catch (e) {
      throw bad((e as Error).message);
    }
  }
  const access = props.publicNetworkAccess;
  if (access !== undefined && access !== null) {
    const a = typeof access === "string" ? access.toLowerCase() : "";
    if (a !== "enabled" && a !== "disabled") throw bad("'publicNetworkAccess' must be Enabled or Disabled.");
    out.publicNetworkAccess = a === "enabled" ? "Enabled" : "Disabled";
  }
  return out;
}

function allocationOf(props: Record<string, unknown>): InstanceAllocationPolicy | undefined {
  const v = props.allocationPolicy;
  if (v === undefined || v === null) return undefined;
  const policy = typeof v === "string" ? ALLOCATION[v.toLowerCase()] : undefined;
  if (!policy) throw bad("'allocationPolicy' must be Hashed, GeoLatency or Static.");
  return policy;
}

/** Absent or null keeps the existing set; missing keys are generated (management.md §1.4). */
function policiesOf(props: Record<string, unknown>): AccessPolicy[] | undefined {
  const v = props.authorizationPolicies;
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw bad("'authorizationPolicies' must be an array.");
  const names = new Set<string>();
  return v.map((p, i) => {
    if (!isObject(p) || typeof p.keyName !== "string" || !/^[A-Za-z0-9\-._]{1,64}$/.test(p.keyName)) {
      throw bad(`authorizationPolicies[${i}].keyName is required: 1-64 letters, digits, '-', '.', '_'.`);
    }
    if (names.has(p.keyName.toLowerCase())) throw bad(`Policy '${p.keyName}' appears twice.`);
    names.add(p.keyName.toLowerCase());
    const rights = typeof p.rights === "string" ? parseRights(p.rights) : undefined;
    if (!rights) {
      throw bad(
        `authorizationPolicies[${i}].rights must list ServiceConfig, EnrollmentRead, EnrollmentWrite, RegistrationStatusRead, RegistrationStatusWrite or DeviceConnect.`,
      );
    }
    const key = (k: unknown, field: string): string => {
      if (k === undefined || k === null || k === "") return newPolicyKey();
      if (typeof k !== "string" || Buffer.from(k, "base64").length < 16) {
        throw bad(`authorizationPolicies[${i}].${field} must be base64 of at least 16 bytes.`);
      }
      return k;
    };
    return {
      keyName: p.keyName,
      primaryKey: key(p.primaryKey, "primaryKey"),
      secondaryKey: key(p.secondaryKey, "secondaryKey"),
      rights,
    };
  });
}

/** Linked hubs (management.md §2); a masked key keeps the stored connection string. */
function hubsOf(props: Record<string, unknown>, existing: LinkedHub[], maxHubs: number): LinkedHub[] | undefined {
  const v = props.iotHubs;
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw bad("'iotHubs' must be an array.");
  if (!unlimited(maxHubs) && v.length > maxHubs) {
    throw bad(`At most ${maxHubs} hubs can be linked (PROVISIO_MAX_LINKED_HUBS).`);
  }
  const names = new Set<string>();
  return v.map((h, i) => {
    if (!isObject(h) || typeof h.connectionString !== "string") {
      throw bad(`iotHubs[${i}].connectionString is required.`);
    }
    const cs = parseConnectionString(h.connectionString);
    if (!cs) {
      throw bad(`iotHubs[${i}].connectionString must be HostName=...;SharedAccessKeyName=...;SharedAccessKey=...`);
    }
    const name = cs.hostName.toLowerCase();
    if (names.has(name)) throw bad(`Hub '${cs.hostName}' is linked twice.`);
    names.add(name);
    const kept = existing.find((e) => e.name.toLowerCase() === name);
    const connectionString = cs.key === MASK || cs.key === "*****" ? kept?.connectionString : h.connectionString;
    if (!connectionString) throw bad(`iotHubs[${i}] has a masked key but '${cs.hostName}' is not linked yet.`);
    if (typeof h.location !== "string" || h.location.trim() === "") throw bad(`iotHubs[${i}].location is required.`);
    const weight = h.allocationWeight ?? 1;
    if (!Number.isInteger(weight) || (weight as number) < 1 || (weight as number) > 1000) {
      throw bad(`iotHubs[${i}].allocationWeight must be a whole number from 1 to 1000.`);
    }
    const apply = h.applyAllocationPolicy ?? true;
    if (typeof apply !== "boolean") throw bad(`iotHubs[${i}].applyAllocationPolicy must be true or false.`);
    return {
      name: cs.hostName,
      connectionString,
      location: h.location.replace(/\s+/g, "").toLowerCase(),
      allocationWeight: weight as number,
      applyAllocationPolicy: apply,
    };
  });
}

/** Provisio's lowest-latency setting: `[{ipMask, location}]`, first match wins (README). */
function locationRulesOf(props: Record<string, unknown>): { ipMask: string; location: string }[] | undefined {
  const v = props.deviceLocationRules;
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw bad("'deviceLocationRules' must be an array of {ipMask, location}.");
  return v.map((rule, i) => {
    if (!isObject(rule) || typeof rule.ipMask !== "string" || !isValidIpMask(rule.ipMask)) {
      throw bad(`deviceLocationRules[${i}].ipMask must be an IPv4 address or CIDR block such as 10.0.0.0/8.`);
    }
    if (typeof rule.location !== "string" || rule.location.trim() === "") {
      throw bad(`deviceLocationRules[${i}].location is required.`);
    }
    return { ipMask: rule.ipMask.trim(), location: normalizeLocation(rule.location) };
  });
}
