// Dry run (a Provisio extension): what a registration would do now, step by step, without
// doing any of it — matched enrollment, attestation verdict for the evidence given, allocation
// with its inputs, the webhook request (and, if asked, its answer), the twin and the
// reprovision action. Nothing is written and no hub is touched.

import { callAllocationWebhook } from "../allocation/custom-webhook.js";
import { compileLocationRules } from "../allocation/location-rules.js";
import { effectivePolicy, selectHub } from "../allocation/select-hub.js";
import { parseCertificate } from "../attestation/x509-info.js";
import { type EnrollmentGroup, type EnrollmentSettings, effectiveReprovisionPolicy } from "../domain/enrollment.js";
import { ProvisioError } from "../domain/errors.js";
import type { IdScope } from "../domain/ids.js";
import type { Instance } from "../domain/instance.js";
import { isObject } from "../domain/json.js";
import { lastAssignment } from "../domain/registration-state.js";
import type { DevicePathStore } from "../store/store.js";
import { AllocationFailure, webhookRequest } from "./allocate.js";
import { planReprovision } from "./apply-to-hub.js";
import { type EnrollmentMatch, findAndAttest } from "./find-enrollment.js";
import type { ScopeCache } from "./scope-cache.js";

export interface DryRunEvidence {
  sasToken?: string;
  /** PEM certificates, leaf first. */
  certificateChain?: string[];
  /** Without evidence: the group to assume the device belongs to. */
  enrollmentGroupId?: string;
  sourceAddress?: string;
  payload?: unknown;
  /** Also send the webhook request and show the answer (the only outside effect, and opt-in). */
  callWebhook?: boolean;
}

function evidenceOf(body: unknown): DryRunEvidence {
  if (body === undefined) return {};
  if (!isObject(body)) throw new ProvisioError("invalidBody", { detail: "The dry-run body must be a JSON object." });
  const str = (k: string) => {
    const v = body[k];
    if (v !== undefined && typeof v !== "string")
      throw new ProvisioError("invalidBody", { detail: `'${k}' must be a string.` });
    return v;
  };
  const chain = body.certificateChain;
  if (chain !== undefined && (!Array.isArray(chain) || !chain.every((c) => typeof c === "string"))) {
    throw new ProvisioError("invalidBody", {
      detail: "'certificateChain' must be an array of PEM strings, leaf first.",
    });
  }
  const out: DryRunEvidence = {};
  const sas = str("sasToken");
  const group = str("enrollmentGroupId");
  const source = str("sourceAddress");
  if (sas) out.sasToken = sas;
  if (group) out.enrollmentGroupId = group;
  if (source) out.sourceAddress = source;
  if (chain) out.certificateChain = chain as string[];
  if (body.payload !== undefined) out.payload = body.payload;
  if (body.callWebhook === true) out.callWebhook = true;
  return out;
}

const enrollmentSummary = (m: EnrollmentMatch) =>
  m.kind === "individual"
    ? {
        kind: "individual",
        registrationId: m.enrollment.registrationId,
        provisioningStatus: m.enrollment.provisioningStatus,
      }
    : { kind: "group", enrollmentGroupId: m.group.enrollmentGroupId, provisioningStatus: m.group.provisioningStatus };

export async function dryRun(
  store: DevicePathStore,
  scopes: ScopeCache,
  instance: Instance,
  registrationId: string,
  body: unknown,
): Promise<Record<string, unknown>> {
  const evidence = evidenceOf(body);
  const scope = instance.idScope as IdScope;
  const [individual, config, record] = await Promise.all([
    store.getEnrollment(scope, registrationId),
    scopes.get(scope),
    store.getRegistration(scope, registrationId),
  ]);
  const report: Record<string, unknown> = { registrationId };

  // Steps 1-2: find the enrollment and attest with the evidence given.
  let match: EnrollmentMatch | undefined;
  const chain: Buffer[] = [];
  for (const pem of evidence.certificateChain ?? []) {
    const cert = parseCertificate(pem);
    if (!cert) throw new ProvisioError("invalidBody", { detail: "A certificateChain entry is not a certificate." });
    chain.push(cert.raw);
  }
  if (evidence.sasToken || chain.length > 0) {
    try {
      const attested = findAndAttest(
        scope,
        registrationId,
        { ...(evidence.sasToken ? { sasToken: evidence.sasToken } : {}), certificateChain: chain },
        individual,
        config.groups,
        config.caCertificates,
        (detail) => {
          report.attestationDetail = detail;
        },
      );
      match = "disabled" in attested ? attested.disabled : attested.match;
      report.attestation = { verdict: "disabled" in attested ? "disabled" : "ok" };
    } catch (err) {
      if (!(err instanceof ProvisioError)) throw err;
      report.attestation = { verdict: "refused", reason: err.message };
    }
  } else {
    const group: EnrollmentGroup | undefined = evidence.enrollmentGroupId
      ? config.groups.find((g) => g.enrollmentGroupId.toLowerCase() === evidence.enrollmentGroupId?.toLowerCase())
      : undefined;
    if (individual)
      match = { kind: "individual", enrollment: individual, disabled: individual.provisioningStatus === "disabled" };
    else if (group) match = { kind: "group", group, disabled: group.provisioningStatus === "disabled" };
    report.attestation = { verdict: "notChecked", reason: "no sasToken or certificateChain was given" };
  }
  if (!match) {
    report.enrollment = null;
    return report;
  }
  report.enrollment = enrollmentSummary(match);
  if (match.disabled) {
    report.outcome = "disabled";
    return report;
  }

  // Step 4: allocation, with the inputs it uses.
  const settings: EnrollmentSettings = match.kind === "individual" ? match.enrollment : match.group;
  const sourceAddress = evidence.sourceAddress ?? "";
  const locate = compileLocationRules(instance.deviceLocationRules ?? []);
  const policy = effectivePolicy(settings, instance.allocationPolicy);
  const allocation: Record<string, unknown> = {
    policy,
    linkedHubs: config.linkedHubs.map((h) => ({
      name: h.name,
      location: h.location,
      allocationWeight: h.allocationWeight,
      applyAllocationPolicy: h.applyAllocationPolicy,
    })),
    enrollmentHubs: settings.iotHubs ?? [],
    sourceAddress,
    deviceLocation: sourceAddress ? (locate(sourceAddress) ?? null) : null,
  };
  report.allocation = allocation;
  const previous = record?.state && lastAssignment(record.state) ? record.state : undefined;
  let chosen: string | undefined;
  let webhookTwin: unknown;
  if (policy === "custom") {
    try {
      const { request, linkedHubs } = webhookRequest({
        instance,
        match,
        settings,
        registrationId,
        sourceAddress: () => sourceAddress,
        linkedHubs: config.linkedHubs,
        locate,
        previous,
        attestation: chain.length > 0 ? { x509: {} } : { symmetricKey: {} },
        devicePayload: evidence.payload,
        webhook: {},
      });
      const webhook: Record<string, unknown> = { request };
      if (evidence.callWebhook && settings.customAllocationDefinition) {
        const outcome = await callAllocationWebhook(settings.customAllocationDefinition, request, linkedHubs, {
          retryDelaysMs: [],
        });
        webhook.calls = outcome.calls;
        if (outcome.ok) {
          chosen = outcome.iotHubHostName;
          webhookTwin = outcome.initialTwin;
        } else allocation.reason = outcome.error.message;
      }
      report.webhook = webhook;
    } catch (err) {
      if (!(err instanceof AllocationFailure)) throw err;
      allocation.reason = err.error.message;
    }
  } else {
    const outcome = selectHub({
      registrationId,
      sourceAddress,
      policy,
      enrollment: settings,
      linkedHubs: config.linkedHubs,
      locate,
    });
    if (outcome.ok) chosen = outcome.hub;
    else allocation.reason = outcome.reason;
  }
  allocation.chosenHub = chosen ?? null;
  const target = chosen ? config.linkedHubs.find((h) => h.name.toLowerCase() === chosen?.toLowerCase()) : undefined;
  if (!target) {
    report.outcome = policy === "custom" && !evidence.callWebhook ? "webhookDecides" : "failed";
    return report;
  }

  // Steps 5: what the hubs would see.
  const plan = planReprovision({
    target,
    policy: effectiveReprovisionPolicy(settings),
    ...(previous?.assignedHub && previous.deviceId
      ? {
          previous: {
            hubName: previous.assignedHub,
            hub: config.linkedHubs.find((h) => h.name.toLowerCase() === previous.assignedHub?.toLowerCase()),
            deviceId: previous.deviceId,
          },
        }
      : {}),
  });
  report.reprovision = {
    current: previous ? { assignedHub: previous.assignedHub, deviceId: previous.deviceId } : null,
    policy: effectiveReprovisionPolicy(settings),
    hub: plan.target.name,
    substatus: plan.substatus,
    twin: plan.twin,
  };
  report.twin = plan.twin === "initial" ? (webhookTwin ?? settings.initialTwin ?? null) : plan.twin;
  report.outcome = "assigned";
  return report;
}
