// Carries out a plan (plan.ts) for one instance, in its order: the instance (created with its
// settings, hubs and policies in one PUT, or those changed in one PUT), then CA certificates,
// enrollment groups and enrollments, deletions last. Stops at the first refusal, saying which
// change it was; what was done before stays done, and applying again finishes the rest.
import { DpsError } from "../dps-client.js";
import { INSTANCE_API } from "../instance-resource.js";
import type { Opts } from "../server-options.js";
import { sessionFor } from "./fleet-state.js";
import { type EnrollmentEntry, type HubEntry, hostOfHub, type InstanceEntry, type PolicyEntry } from "./manifest.js";
import type { Change, InstanceState } from "./plan.js";

const API = "api-version=2021-10-01";
const seg = encodeURIComponent;
const SERVER_OWNED = ["etag", "createdDateTimeUtc", "lastUpdatedDateTimeUtc", "registrationState"];

const masked = (cs: string): boolean => /SharedAccessKey=\*+(;|$)/i.test(cs);

function settingsOf(d: InstanceEntry): Record<string, unknown> {
  return {
    ...(d.allocationPolicy !== undefined ? { allocationPolicy: d.allocationPolicy } : {}),
    ...(d.publicNetworkAccess !== undefined ? { publicNetworkAccess: d.publicNetworkAccess } : {}),
    ...(d.ipFilterRules !== undefined ? { ipFilterRules: d.ipFilterRules } : {}),
  };
}

const hubWire = (h: HubEntry, keep?: string) => ({
  connectionString: masked(h.connectionString) && keep ? keep : h.connectionString,
  location: h.location ?? "local",
  allocationWeight: h.allocationWeight ?? 1,
  applyAllocationPolicy: h.applyAllocationPolicy ?? true,
});

const policyWire = (p: PolicyEntry, kept?: PolicyEntry) => ({
  keyName: p.keyName,
  rights: p.rights,
  // No key in the file: keep the stored one, or let the server generate one for a new policy.
  primaryKey: p.primaryKey ?? kept?.primaryKey ?? null,
  secondaryKey: p.secondaryKey ?? kept?.secondaryKey ?? null,
});

/** The instance's hubs after the plan's hub changes. */
function hubsAfter(state: InstanceState, d: InstanceEntry, changes: Change[]): unknown[] {
  const of = (id: string) => d.linkedHubs?.find((h) => hostOfHub(h) === id.toLowerCase());
  const gone = new Set(changes.filter((c) => c.action === "delete").map((c) => c.id.toLowerCase()));
  const kept = state.hubs
    .filter((h) => !gone.has(h.name.toLowerCase()))
    .map((h) => {
      const wanted = of(h.name);
      return wanted ? hubWire(wanted, h.connectionString) : hubWire(h);
    });
  const added = changes.filter((c) => c.action === "create").map((c) => hubWire(c.desired as HubEntry));
  return [...kept, ...added];
}

function policiesAfter(state: InstanceState, d: InstanceEntry, changes: Change[]): unknown[] {
  const of = (name: string) => d.policies?.find((p) => p.keyName.toLowerCase() === name.toLowerCase());
  const gone = new Set(changes.filter((c) => c.action === "delete").map((c) => c.id.toLowerCase()));
  const kept = state.policies
    .filter((p) => !gone.has(p.keyName.toLowerCase()))
    .map((p) => policyWire(of(p.keyName) ?? p, p));
  const added = changes.filter((c) => c.action === "create").map((c) => policyWire(c.desired as PolicyEntry));
  return [...kept, ...added];
}

function enrollmentBody(e: EnrollmentEntry): EnrollmentEntry {
  const body = { ...e };
  for (const k of SERVER_OWNED) delete body[k];
  return body;
}

export async function applyPlan(
  opts: Opts,
  d: InstanceEntry,
  state: InstanceState,
  changes: Change[],
  done: (c: Change) => void,
): Promise<void> {
  const session = sessionFor(opts, d.name);
  const path = `/provisioningServices/${seg(d.name)}`;
  const of = (kind: Change["kind"]) => changes.filter((c) => c.kind === kind);
  const step = async (c: Change, work: () => Promise<unknown>): Promise<void> => {
    try {
      await work();
    } catch (err) {
      const why = err instanceof DpsError ? `${err.message} (${err.errorCode ?? err.status})` : (err as Error).message;
      throw new Error(`${c.action} ${c.kind} ${c.id} in ${c.instance} failed: ${why}`);
    }
    done(c);
  };

  const instanceChanges = [...of("instance"), ...of("linkedHub"), ...of("policy")];
  const creating = of("instance").find((c) => c.action === "create");
  if (creating) {
    const properties = {
      ...settingsOf(d),
      ...(d.linkedHubs ? { iotHubs: d.linkedHubs.map((h) => hubWire(h)) } : {}),
      ...(d.policies ? { authorizationPolicies: d.policies.map((p) => policyWire(p)) } : {}),
    };
    await step(creating, () =>
      session.client.call("PUT", `${path}?${INSTANCE_API}`, { body: { location: d.location ?? "local", properties } }),
    );
    for (const c of instanceChanges) if (c !== creating) done(c);
  } else if (instanceChanges.length > 0) {
    const properties = {
      ...settingsOf(d),
      ...(of("linkedHub").length > 0 ? { iotHubs: hubsAfter(state, d, of("linkedHub")) } : {}),
      ...(of("policy").length > 0 ? { authorizationPolicies: policiesAfter(state, d, of("policy")) } : {}),
    };
    const first = instanceChanges[0] as Change;
    await step(first, () =>
      session.client.call("PUT", `${path}?${INSTANCE_API}`, {
        body: { properties },
        headers: { "if-match": state.etag },
      }),
    );
    for (const c of instanceChanges.slice(1)) done(c);
  }

  const client = changes.some((c) => c.kind === "enrollment" || c.kind === "enrollmentGroup")
    ? await session.dataPlane("EnrollmentWrite")
    : session.client;
  for (const c of changes) {
    if (c.kind === "certificate") {
      const url = `${path}/certificates/${seg(c.id)}?${INSTANCE_API}`;
      const now = state.certificates.find((x) => x.name.toLowerCase() === c.id.toLowerCase());
      const etag = now ? { "if-match": now.etag } : undefined;
      if (c.action === "delete") await step(c, () => session.client.call("DELETE", url, { headers: etag ?? {} }));
      else {
        const want = c.desired as { certificate: string; verified?: boolean };
        const body = { certificate: want.certificate, isVerified: want.verified ?? false };
        await step(c, () => session.client.call("PUT", url, { body, ...(etag ? { headers: etag } : {}) }));
      }
    } else if (c.kind === "enrollment" || c.kind === "enrollmentGroup") {
      const collection = c.kind === "enrollment" ? "enrollments" : "enrollmentGroups";
      const url = `/${collection}/${seg(c.id)}?${API}`;
      const stored = (c.kind === "enrollment" ? state.enrollments : state.groups).get(c.id.toLowerCase());
      const etag: Record<string, string> = stored ? { "if-match": String(stored.body.etag ?? "*") } : {};
      if (c.action === "delete") await step(c, () => client.call("DELETE", url, { headers: etag }));
      else {
        const body = enrollmentBody(c.desired as EnrollmentEntry);
        await step(c, () => client.call("PUT", url, { body, headers: etag }));
      }
    }
  }
}
