// The allocation step (behaviors.md §4): the effective policy chooses a linked hub. Built-in
// policies are pure (allocation/select-hub.ts); `custom` asks the enrollment's webhook, whose
// calls are kept with the registration so failures can be debugged. A plan (dry run) builds the
// webhook's request and sends it only when asked.
import {
  buildAllocationRequest,
  callAllocationWebhook,
  type RuntimeAttestation,
  type WebhookCall,
  type WebhookOptions,
} from "../allocation/custom-webhook.js";
import { allocationCandidates, effectivePolicy, selectHub } from "../allocation/select-hub.js";
import type { HubCredential } from "../attestation/attestation-outcome.js";
import { type AllocationPolicy, effectiveReprovisionPolicy, type InitialTwin } from "../domain/enrollment.js";
import { type EnrollmentMatch, settingsOf } from "../domain/enrollment-match.js";
import { ProvisioError } from "../domain/errors.js";
import type { LinkedHub } from "../domain/instance.js";
import { type DeviceRegistrationState, lastAssignment } from "../domain/registration-state.js";
import type { ScopeView } from "./scope-views.js";

export interface AllocationInput {
  view: ScopeView;
  match: EnrollmentMatch;
  registrationId: string;
  /** Asked only by policies that use it (select-hub.ts). */
  sourceAddress: () => string;
  previous: DeviceRegistrationState | undefined;
  /** What the webhook is told of the device's attestation (no key material). */
  credential: HubCredential | undefined;
  devicePayload: unknown;
  webhook: Partial<WebhookOptions>;
  /** False in a plan that was not asked to call the webhook: its request is built, not sent. */
  callWebhook: boolean;
}

export interface Allocation {
  policy: AllocationPolicy;
  /** The chosen hub; absent when allocation failed (`failure`) or the webhook was not called. */
  target?: LinkedHub;
  failure?: ProvisioError;
  /** The webhook's initial twin, when it sent one (used instead of the enrollment's). */
  initialTwin?: InitialTwin;
  /** The webhook's return data for the device. */
  payload?: unknown;
  webhookRequest?: Record<string, unknown>;
  webhookCalls?: WebhookCall[];
}

const allocationFailed = (reason: string): ProvisioError => new ProvisioError("allocationFailed", { reason });

/** The webhook is told the mechanism without key material (behaviors.md §4.5). */
export const runtimeAttestation = (credential: HubCredential | undefined): RuntimeAttestation =>
  credential?.kind === "x509"
    ? {
        x509: {
          clientCertificate: {
            sha1Thumbprint: credential.sha1Thumbprint,
            sha256Thumbprint: credential.sha256Thumbprint,
          },
        },
      }
    : { symmetricKey: {} };

export async function allocateHub(input: AllocationInput): Promise<Allocation> {
  const { view, match } = input;
  const settings = settingsOf(match);
  const policy = effectivePolicy(settings, view.instance.allocationPolicy);
  if (policy !== "custom") {
    const chosen = selectHub({
      registrationId: input.registrationId,
      sourceAddress: input.sourceAddress,
      policy,
      enrollment: settings,
      linkedHubs: view.linkedHubs,
      locate: view.locate,
    });
    if (!chosen.ok) return { policy, failure: allocationFailed(chosen.reason) };
    const target = view.linkedHub(chosen.hub);
    return target ? { policy, target } : { policy, failure: allocationFailed(`hub '${chosen.hub}' is not linked`) };
  }

  const definition = settings.customAllocationDefinition;
  if (!definition) return { policy, failure: allocationFailed("the enrollment has no customAllocationDefinition") };
  const assigned = lastAssignment(input.previous);
  const candidates = allocationCandidates(settings.iotHubs, view.linkedHubs);
  if (typeof candidates === "string") return { policy, failure: allocationFailed(candidates) };
  // Under "never re-provision" an assigned device may only stay where it is (behaviors.md §4.5).
  const keep = assigned && !effectiveReprovisionPolicy(settings).updateHubAssignment;
  const linkedHubs = keep ? [assigned.assignedHub] : candidates.map((h) => h.name);
  const webhookRequest = buildAllocationRequest({
    enrollment: match,
    registrationId: input.registrationId,
    currentIotHubHostName: assigned?.assignedHub,
    currentDeviceId: assigned?.deviceId,
    attestation: runtimeAttestation(input.credential),
    payload: input.devicePayload,
    linkedHubs,
  });
  if (!input.callWebhook) return { policy, webhookRequest };
  const outcome = await callAllocationWebhook(definition, webhookRequest, linkedHubs, input.webhook);
  const called = { policy, webhookRequest, webhookCalls: outcome.calls };
  if (!outcome.ok) return { ...called, failure: outcome.error };
  const target = view.linkedHub(outcome.iotHubHostName);
  if (!target) return { ...called, failure: allocationFailed(`hub '${outcome.iotHubHostName}' is not linked`) };
  return {
    ...called,
    target,
    ...(outcome.initialTwin ? { initialTwin: outcome.initialTwin } : {}),
    ...(outcome.payload !== undefined ? { payload: outcome.payload } : {}),
  };
}
