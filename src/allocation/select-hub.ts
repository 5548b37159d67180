// Allocation dispatcher, behaviors.md §4.1: the effective policy, the linked hubs narrowed to candidates, and the
// policy that picks one. Pure: the caller supplies the enrollment, the instance default, the linked hubs and the
// compiled location rules, and turns a refusal into a failed registration.
import type { AllocationPolicy } from "../domain/enrollment.js";
import type { InstanceAllocationPolicy, LinkedHub } from "../domain/instance.js";
import { geoLatency } from "./geo-latency.js";
import { weightedHash } from "./hashed.js";
import { staticHub } from "./static.js";

export type AllocationOutcome =
  | { ok: true; hub: string; policy: "hashed" | "geoLatency" | "static" }
  | { ok: false; reason: string };

/** The policies that choose among linked hubs here; `custom` asks the enrollment's webhook (custom-webhook.ts). */
export type BuiltInPolicy = Exclude<AllocationPolicy, "custom">;

export interface SelectHubInput {
  registrationId: string;
  /**
   * The device's source address as the socket reports it (IPv4 or IPv4-mapped IPv6), or how to
   * get it: asking the socket is a syscall, and only geoLatency reads it.
   */
  sourceAddress: string | (() => string);
  /** From `effectivePolicy`. */
  policy: BuiltInPolicy;
  enrollment: { iotHubs?: string[]; iotHubHostName?: string };
  linkedHubs: readonly LinkedHub[];
  /** Source address → location, typically `compileLocationRules(rules)`; only geoLatency calls it. */
  locate: (address: string) => string | undefined;
}

const addressOf = ({ sourceAddress: a }: SelectHubInput): string => (typeof a === "string" ? a : a());

const NONE_ELIGIBLE = "no linked IoT hub is eligible: link a hub or set applyAllocationPolicy";

/**
 * The enrollment's policy, else the instance's (§4.1): evaluated at registration time. The
 * deprecated `iotHubHostName` implies static when no policy is set.
 */
export const effectivePolicy = (
  enrollment: { allocationPolicy?: AllocationPolicy; iotHubHostName?: string },
  instancePolicy: InstanceAllocationPolicy,
): AllocationPolicy => enrollment.allocationPolicy ?? (enrollment.iotHubHostName ? "static" : instancePolicy);

export function selectHub(input: SelectHubInput): AllocationOutcome {
  const { enrollment, policy } = input;
  switch (policy) {
    case "static":
      return selectStatic(input);
    case "hashed":
    case "geoLatency": {
      const candidates = allocationCandidates(enrollment.iotHubs, input.linkedHubs);
      if (typeof candidates === "string") return { ok: false, reason: candidates };
      const hub =
        policy === "hashed"
          ? weightedHash(input.registrationId, candidates)
          : geoLatency(input.registrationId, addressOf(input), candidates, input.locate);
      return hub === undefined ? { ok: false, reason: NONE_ELIGIBLE } : { ok: true, hub, policy };
    }
    default:
      return { ok: false, reason: `unknown allocation policy ${JSON.stringify(policy satisfies never)}` };
  }
}

/**
 * Hubs a hashed/geoLatency (and later custom) allocation may choose from: the enrollment's `iotHubs` mapped to linked
 * hubs case-insensitively, else every linked hub; hubs with applyAllocationPolicy=false are left out (§4.1).
 * Returns a reason string when a listed hub is not linked or nothing is eligible.
 */
export function allocationCandidates(
  iotHubs: readonly string[] | undefined,
  linkedHubs: readonly LinkedHub[],
): readonly LinkedHub[] | string {
  if (iotHubs === undefined || iotHubs.length === 0) {
    let eligible = 0;
    for (const hub of linkedHubs) if (hub.applyAllocationPolicy) eligible++;
    if (eligible === 0) {
      return linkedHubs.length === 0
        ? "no linked IoT hub is eligible: link a hub to this provisioning service"
        : NONE_ELIGIBLE;
    }
    // Usual case: every linked hub takes part, so reuse the caller's array.
    return eligible === linkedHubs.length ? linkedHubs : linkedHubs.filter((hub) => hub.applyAllocationPolicy);
  }
  const candidates: LinkedHub[] = [];
  for (const listed of iotHubs) {
    const hub = findLinkedHub(linkedHubs, listed);
    if (hub === undefined) return notLinked(listed);
    if (hub.applyAllocationPolicy && !candidates.includes(hub)) candidates.push(hub);
  }
  if (candidates.length === 0) {
    return "no linked IoT hub is eligible: every hub listed on the enrollment has applyAllocationPolicy=false; set applyAllocationPolicy or list another hub";
  }
  return candidates;
}

function selectStatic(input: SelectHubInput): AllocationOutcome {
  const selection = staticHub(input.enrollment);
  if (!selection.ok) return selection;
  // An explicit selection is honoured even when applyAllocationPolicy=false (§4.1), but the hub must be linked.
  const hub = findLinkedHub(input.linkedHubs, selection.hub);
  return hub === undefined
    ? { ok: false, reason: notLinked(selection.hub) }
    : { ok: true, hub: hub.name, policy: "static" };
}

function findLinkedHub(linkedHubs: readonly LinkedHub[], name: string): LinkedHub | undefined {
  for (const hub of linkedHubs) if (hub.name === name) return hub;
  const lower = name.toLowerCase();
  for (const hub of linkedHubs) if (hub.name.length === name.length && hub.name.toLowerCase() === lower) return hub;
  return undefined;
}

const notLinked = (hub: string): string =>
  `hub ${hub} listed on the enrollment is not linked to this provisioning service`;
