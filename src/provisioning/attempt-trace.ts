// The trace of one register call (domain/attempt.ts): each step's outcome, duration and what it
// found, in plain words read off the registration context once the step ran.
import { performance } from "node:perf_hooks";
import { type AttemptStep, type RegistrationAttempt, roundMs } from "../domain/attempt.js";
import { settingsOf } from "../domain/enrollment-match.js";
import { ProvisioError } from "../domain/errors.js";
import { lastAssignment } from "../domain/registration-state.js";
import type { RegistrationContext } from "./registration-steps.js";

export class AttemptTrace {
  readonly steps: AttemptStep[] = [];
  readonly at = new Date().toISOString();
  readonly #started = performance.now();

  passed(step: string, startedAt: number, ctx: RegistrationContext): void {
    const detail = explainStep(step, ctx);
    this.steps.push({
      step,
      outcome: "passed",
      durationMs: roundMs(performance.now() - startedAt),
      ...(detail ? { detail } : {}),
    });
  }

  failed(step: string, startedAt: number, ctx: RegistrationContext, err: unknown): void {
    this.steps.push({
      step,
      outcome: "failed",
      durationMs: roundMs(performance.now() - startedAt),
      detail: explainFailure(step, ctx, err),
    });
  }

  /** The attempt as kept: how it ended and every step so far. */
  attempt(
    ctx: RegistrationContext,
    end: Pick<RegistrationAttempt, "outcome"> & { errorCode?: number; message?: string; operationId?: string },
  ): RegistrationAttempt {
    return {
      at: this.at,
      ...end,
      durationMs: roundMs(performance.now() - this.#started),
      ...(ctx.protocol ? { protocol: ctx.protocol } : {}),
      sourceAddress: ctx.sourceAddress(),
      steps: this.steps,
    };
  }
}

function explainFailure(step: string, ctx: RegistrationContext, err: unknown): string {
  // The device hears a safe summary; here the whole reason (which certificates arrived, …).
  if (step === "attestDevice" && ctx.outcome?.kind === "refused") return ctx.outcome.detail;
  if (step === "allocate" && ctx.allocation) return explainAllocation(ctx) ?? String(err);
  if (err instanceof ProvisioError) return err.message;
  if (err instanceof Error && err.constructor.name === "TpmChallengeIssued") {
    return "TPM challenge issued: the device activates the key in its TPM and registers again";
  }
  return "an unexpected error (the server log has it)";
}

/** What a step that passed found or decided; undefined when there is nothing to say. */
export function explainStep(step: string, ctx: RegistrationContext): string | undefined {
  switch (step) {
    case "checkRequest":
      return ctx.instance && `provisioning service '${ctx.instance.name}' (${ctx.instance.idScope})`;
    case "findCandidates": {
      const groups = ctx.view?.groups.length ?? 0;
      return ctx.individual
        ? `individual enrollment '${ctx.individual.registrationId}' (${ctx.individual.attestation.type})`
        : `no individual enrollment; ${groups} enrollment group${groups === 1 ? "" : "s"} to try`;
    }
    case "attestDevice":
      return explainAttestation(ctx);
    case "throttle":
      return "within the registration rate limit";
    case "injectFault":
    case "injectedDelay":
      return ctx.injectedDelay && `a delay injected for a rehearsal ('${ctx.injectedDelay.text}')`;
    case "readPrevious": {
      const placed = lastAssignment(ctx.previous?.state);
      return placed ? `registered before: '${placed.deviceId}' on ${placed.assignedHub}` : "first registration";
    }
    case "allocate":
      return explainAllocation(ctx);
    case "planHubChanges":
      return ctx.plan && `${ctx.plan.substatus}; twin: ${ctx.plan.twin}`;
    case "applyHubChanges":
      return ctx.applied && `identity written on ${ctx.applied.hub.name}`;
    default:
      return undefined;
  }
}

function explainAttestation(ctx: RegistrationContext): string | undefined {
  const outcome = ctx.outcome;
  if (!outcome || outcome.kind === "refused") return undefined;
  const m = outcome.match;
  const by =
    m.kind === "individual"
      ? `individual enrollment '${m.enrollment.registrationId}'`
      : `enrollment group '${m.group.enrollmentGroupId}'`;
  if (outcome.kind === "disabled") return `${by} is disabled`;
  const how =
    outcome.credential.kind === "x509"
      ? `an X.509 chain of ${ctx.evidence.kind === "x509" ? ctx.evidence.chain.length : "?"} certificate(s), leaf SHA-1 ${outcome.credential.sha1Thumbprint}`
      : settingsOf(m).attestation.type === "tpm"
        ? "the TPM's key"
        : "a SAS token signed with its key";
  return `attested by ${by} with ${how}; device id '${outcome.deviceId}'`;
}

function explainAllocation(ctx: RegistrationContext): string | undefined {
  const a = ctx.allocation;
  if (!a) return undefined;
  const calls = (a.webhookCalls ?? []).map(
    (c) => `webhook ${c.status === undefined ? "failed" : `answered ${c.status}`} in ${Math.round(c.durationMs)} ms`,
  );
  const candidates = (ctx.view?.linkedHubs ?? []).map((h) => h.name);
  const chose = a.target ? `chose ${a.target.name}` : `no hub${a.failure ? `: ${a.failure.message}` : ""}`;
  return [`${a.policy} among ${candidates.join(", ") || "no linked hubs"}: ${chose}`, ...calls].join("; ");
}
