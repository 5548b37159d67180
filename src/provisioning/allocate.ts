// Step 4 of a registration: choose the hub (behaviors.md §4). Built-in policies are pure
// (allocation/select-hub.ts); the custom policy asks the enrollment's webhook, whose calls are
// kept with the registration so failures can be debugged.

import {
  buildAllocationRequest,
  callAllocationWebhook,
  type RuntimeAttestation,
  type WebhookCall,
  type WebhookOptions,
} from "../allocation/custom-webhook.js";
import { allocationCandidates, effectivePolicy, selectHub } from "../allocation/select-hub.js";
import { type EnrollmentSettings, effectiveReprovisionPolicy, type InitialTwin } from "../domain/enrollment.js";
import { ProvisioError } from "../domain/errors.js";
import type { Instance, LinkedHub } from "../domain/instance.js";
import { type DeviceRegistrationState, lastAssignment } from "../domain/registration-state.js";
import type { EnrollmentMatch } from "./find-enrollment.js";

export interface Allocation {
  target: LinkedHub;
  /** The webhook's initial twin, when it sent one (used instead of the enrollment's). */
  initialTwin?: InitialTwin;
  /** The webhook's return data for the device. */
  payload?: unknown;
  webhookCalls?: WebhookCall[];
}

/** A failed allocation, with the webhook calls that led to it. */
export class AllocationFailure extends Error {
  constructor(
    readonly error: ProvisioError,
    readonly webhookCalls: WebhookCall[] = [],
  ) {
    super(error.message);
  }
}

export interface AllocateInput {
  instance: Instance;
  match: EnrollmentMatch;
  settings: EnrollmentSettings;
  registrationId: string;
  /** Asked only by policies that use it (select-hub.ts). */
  sourceAddress: () => string;
  linkedHubs: readonly LinkedHub[];
  locate: (address: string) => string | undefined;
  previous: DeviceRegistrationState | undefined;
  attestation: RuntimeAttestation;
  devicePayload: unknown;
  webhook: Partial<WebhookOptions>;
}

const byName = (hubs: readonly LinkedHub[], name: string | undefined) =>
  name === undefined ? undefined : hubs.find((h) => h.name.toLowerCase() === name.toLowerCase());

/** The webhook's request as it would be sent now (also what a dry run shows). */
export function webhookRequest(input: AllocateInput): { request: Record<string, unknown>; linkedHubs: string[] } {
  const { settings, previous } = input;
  const assigned = lastAssignment(previous);
  const candidates = allocationCandidates(settings.iotHubs, input.linkedHubs);
  if (typeof candidates === "string")
    throw new AllocationFailure(new ProvisioError("allocationFailed", { reason: candidates }));
  // Under "never re-provision" an assigned device may only stay where it is (behaviors.md §4.5).
  const keep = assigned && !effectiveReprovisionPolicy(settings).updateHubAssignment;
  const linkedHubs = keep && assigned ? [assigned.assignedHub] : candidates.map((h) => h.name);
  const request = buildAllocationRequest({
    enrollment:
      input.match.kind === "individual"
        ? { kind: "individual", enrollment: input.match.enrollment }
        : { kind: "group", group: input.match.group },
    registrationId: input.registrationId,
    currentIotHubHostName: assigned?.assignedHub,
    currentDeviceId: assigned?.deviceId,
    attestation: input.attestation,
    payload: input.devicePayload,
    linkedHubs,
  });
  return { request, linkedHubs };
}

export async function allocate(input: AllocateInput): Promise<Allocation> {
  const { settings } = input;
  const policy = effectivePolicy(settings, input.instance.allocationPolicy);
  if (policy === "custom") {
    const definition = settings.customAllocationDefinition;
    if (!definition) {
      throw new AllocationFailure(
        new ProvisioError("allocationFailed", { reason: "the enrollment has no customAllocationDefinition" }),
      );
    }
    const { request, linkedHubs } = webhookRequest(input);
    const outcome = await callAllocationWebhook(definition, request, linkedHubs, input.webhook);
    if (!outcome.ok) throw new AllocationFailure(outcome.error, outcome.calls);
    const target = byName(input.linkedHubs, outcome.iotHubHostName);
    if (!target) {
      throw new AllocationFailure(
        new ProvisioError("allocationFailed", { reason: `hub '${outcome.iotHubHostName}' is not linked` }),
        outcome.calls,
      );
    }
    return {
      target,
      ...(outcome.initialTwin ? { initialTwin: outcome.initialTwin } : {}),
      ...(outcome.payload !== undefined ? { payload: outcome.payload } : {}),
      webhookCalls: outcome.calls,
    };
  }
  const chosen = selectHub({
    registrationId: input.registrationId,
    sourceAddress: input.sourceAddress,
    policy,
    enrollment: settings,
    linkedHubs: input.linkedHubs,
    locate: input.locate,
  });
  if (!chosen.ok) throw new AllocationFailure(new ProvisioError("allocationFailed", { reason: chosen.reason }));
  const target = byName(input.linkedHubs, chosen.hub);
  if (!target)
    throw new AllocationFailure(new ProvisioError("allocationFailed", { reason: `hub '${chosen.hub}' is not linked` }));
  return { target };
}
