// Dry run (a Provisio extension): what a registration would do now, step by step, without doing
// any of it. The engine runs the registration's own steps in plan mode (registration-steps.ts);
// this file reads the evidence a dry run is given and reports what the steps found: the matched
// enrollment, the attestation verdict, the allocation with its inputs, the webhook request (and,
// if asked, its answer), the twin and the reprovision action.
import type { DeviceEvidence } from "../attestation/attestation-outcome.js";
import { parseCertificate } from "../attestation/x509-info.js";
import { effectiveReprovisionPolicy } from "../domain/enrollment.js";
import { type EnrollmentMatch, settingsOf } from "../domain/enrollment-match.js";
import { ProvisioError } from "../domain/errors.js";
import { isObject } from "../domain/json.js";
import { lastAssignment } from "../domain/registration-state.js";
import { matchOf, type RegistrationContext } from "./registration-steps.js";

export interface DryRunEvidence {
  /** A SAS token, a certificate chain (PEMs, leaf first), or nothing. */
  credentials: DeviceEvidence;
  /** Without evidence: the group to assume the device belongs to. */
  enrollmentGroupId?: string;
  sourceAddress?: string;
  payload?: unknown;
  /** Also send the webhook request and show the answer (the only outside effect, and opt-in). */
  callWebhook?: boolean;
}

export function parseDryRunEvidence(body: unknown): DryRunEvidence {
  if (body === undefined) return { credentials: { kind: "none" } };
  if (!isObject(body)) throw new ProvisioError("invalidBody", { detail: "The dry-run body must be a JSON object." });
  const str = (k: string): string | undefined => {
    const v = body[k];
    if (v !== undefined && typeof v !== "string") {
      throw new ProvisioError("invalidBody", { detail: `'${k}' must be a string.` });
    }
    return v === "" ? undefined : v;
  };
  const chainPems = body.certificateChain;
  if (chainPems !== undefined && (!Array.isArray(chainPems) || !chainPems.every((c) => typeof c === "string"))) {
    throw new ProvisioError("invalidBody", {
      detail: "'certificateChain' must be an array of PEM strings, leaf first.",
    });
  }
  const chain: Buffer[] = [];
  for (const pem of (chainPems ?? []) as string[]) {
    const cert = parseCertificate(pem);
    if (!cert) throw new ProvisioError("invalidBody", { detail: "A certificateChain entry is not a certificate." });
    chain.push(cert.raw);
  }
  const sasToken = str("sasToken");
  const group = str("enrollmentGroupId");
  const source = str("sourceAddress");
  // As on the wire: a SAS token wins; a certificate chain alone means X.509.
  const credentials: DeviceEvidence = sasToken
    ? { kind: "sas", token: sasToken }
    : chain.length > 0
      ? { kind: "x509", chain }
      : { kind: "none" };
  return {
    credentials,
    ...(group ? { enrollmentGroupId: group } : {}),
    ...(source ? { sourceAddress: source } : {}),
    ...(body.payload !== undefined ? { payload: body.payload } : {}),
    ...(body.callWebhook === true ? { callWebhook: true } : {}),
  };
}

const enrollmentSummary = (m: EnrollmentMatch) =>
  m.kind === "individual"
    ? {
        kind: "individual",
        registrationId: m.enrollment.registrationId,
        provisioningStatus: m.enrollment.provisioningStatus,
      }
    : { kind: "group", enrollmentGroupId: m.group.enrollmentGroupId, provisioningStatus: m.group.provisioningStatus };

/** What the steps found, in the report's words. */
export function dryRunReport(ctx: RegistrationContext, evidence: DryRunEvidence): Record<string, unknown> {
  const report: Record<string, unknown> = { registrationId: ctx.registrationId };
  const outcome = ctx.outcome;
  if (ctx.notChecked) {
    report.attestation = { verdict: "notChecked", reason: "no sasToken or certificateChain was given" };
  } else if (outcome?.kind === "refused") {
    report.attestation = { verdict: "refused", reason: `Unauthorized: ${outcome.reason}.` };
    if (outcome.detail !== outcome.reason) report.attestationDetail = outcome.detail;
  } else if (outcome) {
    report.attestation = { verdict: outcome.kind === "disabled" ? "disabled" : "ok" };
  }
  const match = matchOf(ctx);
  if (!match) {
    report.enrollment = null;
    return report;
  }
  report.enrollment = enrollmentSummary(match);
  if (outcome?.kind === "disabled") {
    report.outcome = "disabled";
    return report;
  }

  const view = ctx.view;
  const allocation = ctx.allocation;
  const settings = settingsOf(match);
  const sourceAddress = evidence.sourceAddress ?? "";
  const section: Record<string, unknown> = {
    policy: allocation?.policy,
    linkedHubs: (view?.linkedHubs ?? []).map((h) => ({
      name: h.name,
      location: h.location,
      allocationWeight: h.allocationWeight,
      applyAllocationPolicy: h.applyAllocationPolicy,
    })),
    enrollmentHubs: settings.iotHubs ?? [],
    sourceAddress,
    deviceLocation: sourceAddress && view ? (view.locate(sourceAddress) ?? null) : null,
  };
  report.allocation = section;
  if (allocation?.webhookRequest) {
    report.webhook = {
      request: allocation.webhookRequest,
      ...(allocation.webhookCalls ? { calls: allocation.webhookCalls } : {}),
    };
  }
  if (allocation?.failure) section.reason = allocation.failure.message;
  section.chosenHub = allocation?.target?.name ?? null;
  const plan = ctx.plan;
  if (!plan) {
    report.outcome = allocation?.policy === "custom" && !evidence.callWebhook ? "webhookDecides" : "failed";
    return report;
  }

  const current = lastAssignment(ctx.previous?.state);
  report.reprovision = {
    current: current ? { assignedHub: current.assignedHub, deviceId: current.deviceId } : null,
    policy: effectiveReprovisionPolicy(settings),
    hub: plan.target.name,
    substatus: plan.substatus,
    twin: plan.twin,
  };
  report.twin = plan.twin === "initial" ? (ctx.initialTwin ?? null) : plan.twin;
  report.outcome = "assigned";
  return report;
}
