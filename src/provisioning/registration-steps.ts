// A registration as an ordered list of named steps over one context (as aedes writes CONNECT):
//   checkRequest → findCandidates → attest → throttle              (the device waits on these)
//   readPrevious → allocate → planHubChanges → applyToHub          (the work; answered in time or polled)
// A dry run runs the same steps in plan mode: nothing is written, no hub is touched, and the
// webhook is called only when asked, so a plan and a registration cannot disagree.
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { WebhookOptions } from "../allocation/custom-webhook.js";
import { type AttestationCandidates, attest } from "../attestation/attest.js";
import { type AttestationOutcome, type DeviceEvidence, refused } from "../attestation/attestation-outcome.js";
import { activationBlob } from "../attestation/tpm/activation-blob.js";
import { parseRsaPublic, TpmKeyError } from "../attestation/tpm/tpm-public.js";
import { attestTpm, endorsementKeyHash, type TpmInput, type TpmKeys } from "../attestation/tpm-attestation.js";
import type { IndividualEnrollment, InitialTwin } from "../domain/enrollment.js";
import { effectiveReprovisionPolicy } from "../domain/enrollment.js";
import { type EnrollmentMatch, settingsOf } from "../domain/enrollment-match.js";
import { ProvisioError } from "../domain/errors.js";
import type { FaultRule } from "../domain/faults.js";
import type { HubIntent } from "../domain/hub-intent.js";
import { type IdScope, idKey, isValidRegistrationId } from "../domain/ids.js";
import type { Instance } from "../domain/instance.js";
import { isObject } from "../domain/json.js";
import type { OperationCarrier } from "../domain/operation.js";
import { lastAssignment, type RegistrationRecord } from "../domain/registration-state.js";
import type { DeviceProtocol } from "../observability/metrics.js";
import type { RateLimit } from "../security/rate-limit.js";
import type { DevicePathStore } from "../store/store.js";
import { type Allocation, allocateHub } from "./allocate.js";
import {
  type ApplyResult,
  applyToHub,
  type HubWarning,
  planReprovision,
  type ReprovisionPlan,
} from "./apply-to-hub.js";
import type { AttemptTrace } from "./attempt-trace.js";
import { spreadRetryAfter } from "./backoff.js";
import type { FaultInjection } from "./fault-injection.js";
import type { HubClientPool } from "./hub-client-pool.js";
import type { InstanceCache } from "./instance-cache.js";
import type { NetworkFilters } from "./network-filters.js";
import type { RecordCounts } from "./record-counts.js";
import type { ScopeView, ScopeViews } from "./scope-views.js";

/** What the steps use besides the context: the engine's parts. */
export interface StepDeps {
  store: DevicePathStore;
  instances: Pick<InstanceCache, "byScope">;
  scopes: ScopeViews;
  hubs: HubClientPool;
  limiter: RateLimit;
  webhook: Partial<WebhookOptions>;
  warn: HubWarning;
  /** This node's claim on work it starts now (operations, hub intents). */
  carrier(): OperationCarrier;
  /** IP filter rules and public network access of the instances. */
  network: NetworkFilters;
  /** Logs a refusal by the network settings with what decided it. */
  refusedByNetwork(instance: Instance, address: string, rule: string): void;
  /** The registration records quota; none: unlimited. */
  records?: Pick<RecordCounts, "admitNew">;
  /** Faults injected for rehearsals (PROVISIO_FAULTS); none: none. */
  faults?: Pick<FaultInjection, "pick">;
}

export interface RegistrationContext {
  readonly mode: "register" | "plan";
  readonly idScope: string;
  readonly registrationId: string;
  readonly evidence: DeviceEvidence;
  readonly sourceAddress: () => string;
  /** The request body (register mode), or undefined. */
  readonly body: unknown;
  /** A plan without evidence: the group to assume the device belongs to. */
  readonly assumeGroup?: string;
  /** A plan: send the webhook request too. */
  readonly callWebhook?: boolean;
  /** A TPM device's keys that came outside the body (AMQP's SASL TPM). */
  readonly presentedTpm?: TpmKeys;
  /** The protocol the device came over, when its transport says. */
  readonly protocol?: DeviceProtocol;
  /** A session transport's earlier attestation: the attest step does not run again. */
  readonly attested?: AttestationOutcome;

  instance?: Instance;
  /** The device's payload (register body), passed to a custom allocation webhook. */
  payload?: unknown;
  /** A TPM device's endorsement and storage root keys (register body `tpm`). */
  tpmKeys?: TpmKeys;
  view?: ScopeView;
  individual?: IndividualEnrollment | undefined;
  /** Attested or disabled: a refusal ends the registration (register) or is reported (plan). */
  outcome?: AttestationOutcome;
  /** In a plan without evidence, attestation was not checked. */
  notChecked?: boolean;
  previous?: RegistrationRecord | undefined;
  /** `previous` was read (it may be absent: a first registration). */
  previousRead?: boolean;
  allocation?: Allocation;
  plan?: ReprovisionPlan;
  /** The twin the identity gets if the plan says "initial": the webhook's, else the enrollment's. */
  initialTwin?: InitialTwin | undefined;
  applied?: ApplyResult;
  /** The operation the work answers with (register mode, once the work starts). */
  operationId?: string;
  /** A hub intent was written: the record's commit settles it. */
  intentWritten?: boolean;
  /** A rehearsal's delay before the work (PROVISIO_FAULTS). */
  injectedDelay?: FaultRule;
  /** A register call's steps as they ran, to keep with the registration (domain/attempt.ts). */
  trace?: AttemptTrace;
}

export type Step = (ctx: RegistrationContext, deps: StepDeps) => Promise<void> | void;

/** A field an earlier step sets; a step running out of order is a bug, not a device's fault. */
function need<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`registration step order: ${what} is not set`);
  return value;
}

export const matchOf = (ctx: RegistrationContext): EnrollmentMatch | undefined =>
  ctx.outcome?.kind === "attested" || ctx.outcome?.kind === "disabled" ? ctx.outcome.match : undefined;

/** What the device steps established once they passed: the scope, and the enrollment that decides. */
export interface Admission {
  scope: IdScope;
  match: EnrollmentMatch;
  outcome: Extract<AttestationOutcome, { kind: "attested" | "disabled" }>;
}

export function admissionOf(ctx: RegistrationContext): Admission {
  const instance = need(ctx.instance, "instance");
  const outcome = ctx.outcome;
  if (outcome?.kind !== "attested" && outcome?.kind !== "disabled") {
    throw new Error("registration step order: the device was not admitted");
  }
  return { scope: instance.idScope, match: outcome.match, outcome };
}

// --- The steps the device waits on -------------------------------------------------------------

/** The id follows DPS's rules (behaviors.md §1.1), the scope exists, the body is well-formed. */
export const checkRequest: Step = (ctx, deps) => {
  if (!isValidRegistrationId(ctx.registrationId)) {
    throw new ProvisioError("invalidRegistrationId", { id: ctx.registrationId });
  }
  ctx.instance = deps.instances.byScope(ctx.idScope);
  if (!ctx.instance) throw new ProvisioError("unknownIdScope", { scope: ctx.idScope });
  // Before any credential is read (behaviors.md §10.2); a plan has no connection to judge.
  if (ctx.mode === "register") {
    const verdict = deps.network.check(ctx.instance, ctx.sourceAddress(), "deviceApi");
    if (!verdict.admit) {
      deps.refusedByNetwork(ctx.instance, ctx.sourceAddress(), verdict.rule);
      // The device is not told why (the filter is not named).
      throw new ProvisioError("unauthorized", { detail: "this client may not connect to this provisioning service" });
    }
  }
  if (ctx.mode === "register") {
    ctx.payload = payloadOf(ctx.body, ctx.registrationId);
    ctx.tpmKeys = tpmKeysOf(ctx.body) ?? ctx.presentedTpm;
  }
};

/** `tpm: {endorsementKey, storageRootKey}` (tpm-attestation.md §2): base64 TPM2B_PUBLICs. */
function tpmKeysOf(body: unknown): TpmKeys | undefined {
  if (!isObject(body) || body.tpm === undefined) return undefined;
  const tpm = body.tpm;
  const base64 = (v: unknown) => typeof v === "string" && v !== "" && /^[A-Za-z0-9+/]*={0,2}$/.test(v);
  if (!isObject(tpm) || !base64(tpm.endorsementKey) || !base64(tpm.storageRootKey)) {
    throw new ProvisioError("invalidBody", {
      detail: "'tpm' must hold 'endorsementKey' and 'storageRootKey', each the base64 of a TPM2B_PUBLIC.",
    });
  }
  return {
    endorsementKey: Buffer.from(String(tpm.endorsementKey), "base64"),
    storageRootKey: Buffer.from(String(tpm.storageRootKey), "base64"),
  };
}

/** device-api.md §3.1: `{registrationId, payload?}`; the id, when sent, must be this device's. */
function payloadOf(body: unknown, registrationId: string): unknown {
  if (body !== undefined && body !== null && !isObject(body)) {
    throw new ProvisioError("invalidBody", { detail: "The body must be a JSON object with 'registrationId'." });
  }
  const b = body ?? {};
  if (typeof b.registrationId === "string" && !isValidRegistrationId(b.registrationId)) {
    throw new ProvisioError("invalidRegistrationId", { id: b.registrationId });
  }
  if (
    b.registrationId !== undefined &&
    (typeof b.registrationId !== "string" || idKey(b.registrationId) !== idKey(registrationId))
  ) {
    throw new ProvisioError("registrationIdMismatch", { bodyId: String(b.registrationId), pathId: registrationId });
  }
  const payload = b.payload;
  if (payload !== undefined && payload !== null && !isObject(payload)) throw new ProvisioError("invalidPayload");
  return payload ?? undefined;
}

/**
 * The individual enrollment with the device's id and the scope's compiled view. The device's
 * registration record comes in the same read (one round trip): the work needs it next.
 */
export const findCandidates: Step = async (ctx, deps) => {
  const instance = need(ctx.instance, "instance");
  const [device, view] = await Promise.all([
    deps.store.readDevice(instance.idScope, ctx.registrationId),
    deps.scopes.get(instance),
  ]);
  ctx.individual = device.enrollment;
  ctx.previous = device.registration;
  ctx.previousRead = true;
  ctx.view = view;
};

/** A TPM device's first register: the reply is this challenge, not an operation (tpm-attestation.md §3). */
export class TpmChallengeIssued {
  constructor(readonly authenticationKey: string) {}
}

/** How long a TPM device may sign with its challenge key: its registration and polls fit in it. */
export const TPM_CHALLENGE_TTL_MS = 60 * 60 * 1000;

/** One mechanism answers (attestation/attest.ts, or TPM's with its challenge); a refusal ends a registration here. */
export const attestDevice: Step = async (ctx, deps) => {
  const view = need(ctx.view, "view");
  if (ctx.attested) {
    ctx.outcome = ctx.attested;
    return;
  }
  if (ctx.mode === "plan" && ctx.evidence.kind === "none") return assumeEnrollment(ctx, view);
  const individual = ctx.individual;
  if (individual?.attestation.type === "tpm" && ctx.evidence.kind !== "x509") {
    ctx.outcome = await attestTpmDevice(ctx, deps, { ...individual, attestation: individual.attestation });
  } else {
    ctx.outcome = attestOthers(ctx, view);
  }
  if (ctx.outcome.kind === "refused" && ctx.mode === "register") {
    throw new ProvisioError("unauthorized", { detail: ctx.outcome.reason });
  }
};

/** TPM: a device without a token is challenged (the challenge kept in the store), one with a token checked. */
async function attestTpmDevice(
  ctx: RegistrationContext,
  deps: StepDeps,
  enrollment: TpmInput["enrollment"],
): Promise<AttestationOutcome> {
  const scope = need(ctx.instance, "instance").idScope;
  if (ctx.protocol === "mqtt" || ctx.protocol === "mqttws") {
    return refused(`'${enrollment.registrationId}' attests with a TPM, which DPS offers over HTTPS and AMQP, not MQTT`);
  }
  const token = ctx.evidence.kind === "sas" ? ctx.evidence.token : undefined;
  const now = new Date();
  const verdict = attestTpm({
    idScope: ctx.idScope,
    registrationId: ctx.registrationId,
    token,
    enrollment,
    presented: ctx.tpmKeys,
    challenge: token === undefined ? undefined : await deps.store.getTpmChallenge(scope, ctx.registrationId),
    now,
  });
  if (verdict.kind !== "issueChallenge") return verdict;
  if (ctx.mode === "plan") return refused("a TPM device without a token would be challenged first");
  const key = randomBytes(32);
  let blob: Buffer;
  try {
    blob = activationBlob(
      parseRsaPublic(verdict.keys.endorsementKey, "endorsement key"),
      parseRsaPublic(verdict.keys.storageRootKey, "storage root key"),
      key,
    );
  } catch (err) {
    if (err instanceof TpmKeyError) throw new ProvisioError("invalidBody", { detail: err.message });
    throw err;
  }
  await deps.store.putTpmChallenge(scope, ctx.registrationId, {
    key: key.toString("base64"),
    endorsementKeyHash: endorsementKeyHash(verdict.keys.endorsementKey),
    expiresAt: new Date(now.getTime() + TPM_CHALLENGE_TTL_MS).toISOString(),
  });
  throw new TpmChallengeIssued(blob.toString("base64"));
}

/** Symmetric keys and X.509 (attestation/attest.ts). */
function attestOthers(ctx: RegistrationContext, view: ScopeView): AttestationOutcome {
  const candidates: AttestationCandidates = {
    individual: ctx.individual,
    symmetricKeyGroups: view.symmetricKeyGroupsFor(ctx.registrationId),
    x509: view.x509,
  };
  const outcome = attest(ctx.idScope, ctx.registrationId, ctx.evidence, candidates, new Date());
  const match = outcome.kind === "attested" || outcome.kind === "disabled" ? outcome.match : undefined;
  if (match?.kind === "group" && ctx.evidence.kind === "sas") {
    view.rememberGroup(ctx.registrationId, match.group.enrollmentGroupId);
  }
  return outcome;
}

/** A plan without evidence: the individual enrollment, else the group it was told to assume. */
function assumeEnrollment(ctx: RegistrationContext, view: ScopeView): void {
  ctx.notChecked = true;
  const group = ctx.assumeGroup
    ? view.groups.find((g) => g.enrollmentGroupId.toLowerCase() === ctx.assumeGroup?.toLowerCase())
    : undefined;
  const match: EnrollmentMatch | undefined = ctx.individual
    ? { kind: "individual", enrollment: ctx.individual }
    : group
      ? { kind: "group", group }
      : undefined;
  if (!match) return;
  ctx.outcome =
    settingsOf(match).provisioningStatus === "disabled"
      ? { kind: "disabled", match }
      : {
          kind: "attested",
          match,
          deviceId: ctx.registrationId,
          credential: { kind: "keys", primaryKey: "", secondaryKey: "" },
        };
}

/**
 * A TPM device's register carries its keys, usable ones with the enrolled EK: its hub key comes
 * back wrapped for them (tpm-attestation.md §5), so they are checked before any work begins.
 */
export const tpmKeysSent: Step = (ctx) => {
  if (ctx.mode !== "register" || ctx.outcome?.kind !== "attested") return;
  const attestation = settingsOf(ctx.outcome.match).attestation;
  if (attestation.type !== "tpm") return;
  const keys = ctx.tpmKeys;
  if (!keys) {
    throw new ProvisioError("invalidBody", {
      detail: "A TPM device's register body holds 'tpm' with its endorsementKey and storageRootKey.",
    });
  }
  if (!keys.endorsementKey.equals(Buffer.from(attestation.tpm.endorsementKey, "base64"))) {
    throw new ProvisioError("unauthorized", { detail: "the endorsement key is not the enrolled one" });
  }
  try {
    parseRsaPublic(keys.endorsementKey, "endorsement key");
    parseRsaPublic(keys.storageRootKey, "storage root key");
  } catch (err) {
    if (err instanceof TpmKeyError) throw new ProvisioError("invalidBody", { detail: err.message });
    throw err;
  }
};

/** Registrations per minute per provisioning service (behaviors.md §9): over it, 429 + Retry-After. */
export const throttle: Step = async (ctx, deps) => {
  if (ctx.mode === "plan") return;
  const wait = await deps.limiter.take(need(ctx.instance, "instance").idScope);
  if (wait !== undefined) throw new ProvisioError("throttled", {}, spreadRetryAfter(wait));
};

/** A rehearsal's fault (PROVISIO_FAULTS): a 429 or 500 answer now, or a delay before the work. */
export const injectFault: Step = (ctx, deps) => {
  if (ctx.mode === "plan" || !deps.faults) return;
  const match = matchOf(ctx);
  const group = match?.kind === "group" ? match.group.enrollmentGroupId : undefined;
  const rule = deps.faults.pick(need(ctx.instance, "instance").name, group, ctx.registrationId);
  if (!rule) return;
  if (rule.fault.kind === "429") throw new ProvisioError("faultThrottled", { rule: rule.text }, INJECTED_RETRY_AFTER_S);
  if (rule.fault.kind === "500") throw new ProvisioError("faultInternal", { rule: rule.text });
  ctx.injectedDelay = rule;
};

/** The Retry-After of an injected 429: fixed, so a rehearsal sees the same numbers each run. */
const INJECTED_RETRY_AFTER_S = 3;

/** A device's first registration needs room for its record (behaviors.md §9): refused, nothing is written. */
export const recordQuota: Step = async (ctx, deps) => {
  if (ctx.mode === "plan" || ctx.previous || !deps.records) return;
  await deps.records.admitNew(need(ctx.instance, "instance"));
};

/** Who the device is and which enrollment decides: every device request begins with these. */
export const ADMISSION_STEPS: readonly Step[] = [checkRequest, findCandidates, attestDevice];
/** A register call's steps before its work: admission, the rate limit, room for a new record. */
export const DEVICE_STEPS: readonly Step[] = [...ADMISSION_STEPS, tpmKeysSent, injectFault, throttle, recordQuota];

// --- The work --------------------------------------------------------------------------------

/** A rehearsal's delay (injectFault): the work waits, the device polls meanwhile. */
export const injectedDelay: Step = async (ctx) => {
  const fault = ctx.injectedDelay?.fault;
  if (fault?.kind !== "delay") return;
  await new Promise((resolve) => setTimeout(resolve, fault.ms));
};

/** The registration record as it is: where the device was placed, when it was first created. */
export const readPrevious: Step = async (ctx, deps) => {
  if (ctx.previousRead) return;
  ctx.previous = await deps.store.getRegistration(need(ctx.instance, "instance").idScope, ctx.registrationId);
  ctx.previousRead = true;
};

export const allocate: Step = async (ctx, deps) => {
  const outcome = ctx.outcome;
  if (outcome?.kind !== "attested") return;
  ctx.allocation = await allocateHub({
    view: need(ctx.view, "view"),
    match: outcome.match,
    registrationId: ctx.registrationId,
    sourceAddress: ctx.sourceAddress,
    previous: ctx.previous?.state,
    credential: ctx.notChecked ? undefined : outcome.credential,
    devicePayload: ctx.payload,
    webhook: ctx.mode === "plan" ? { retryDelaysMs: [] } : deps.webhook,
    callWebhook: ctx.mode === "register" || ctx.callWebhook === true,
  });
  if (ctx.allocation.failure && ctx.mode === "register") throw ctx.allocation.failure;
};

/** Which hub, which twin, what becomes of the old hub (behaviors.md §6.2). */
export const planHubChanges: Step = (ctx) => {
  const outcome = ctx.outcome;
  const target = ctx.allocation?.target;
  if (outcome?.kind !== "attested" || !target) return;
  const settings = settingsOf(outcome.match);
  const placed = lastAssignment(ctx.previous?.state);
  ctx.plan = planReprovision({
    target,
    previous: placed && {
      hubName: placed.assignedHub,
      hub: need(ctx.view, "view").linkedHub(placed.assignedHub),
      deviceId: placed.deviceId,
    },
    policy: effectiveReprovisionPolicy(settings),
  });
  ctx.initialTwin = ctx.allocation?.initialTwin ?? settings.initialTwin;
};

/** What the registration of `ctx` does to the hubs, as a hub intent carried by `carrier`. */
export function hubIntentOf(ctx: RegistrationContext, carrier: OperationCarrier): HubIntent | undefined {
  const { plan, outcome, operationId } = ctx;
  if (!plan || outcome?.kind !== "attested" || !operationId) return undefined;
  return {
    operationId,
    registrationId: ctx.registrationId,
    target: { hubName: plan.target.name, deviceId: outcome.deviceId },
    ...(plan.previous ? { previous: { hubName: plan.previous.hubName, deviceId: plan.previous.deviceId } } : {}),
    carrier,
  };
}

export const applyHubChanges: Step = async (ctx, deps) => {
  if (ctx.mode === "plan") return;
  const outcome = ctx.outcome;
  if (outcome?.kind !== "attested") return;
  const plan = need(ctx.plan, "plan");
  // Before the first hub write: what this registration is about to do (domain/hub-intent.ts).
  await deps.store.putHubIntent(
    need(ctx.instance, "instance").idScope,
    need(hubIntentOf(ctx, deps.carrier()), "hub intent"),
  );
  ctx.intentWritten = true;
  ctx.applied = await applyToHub(
    deps.hubs,
    {
      plan,
      deviceId: outcome.deviceId,
      credential: outcome.credential,
      iotEdge: settingsOf(outcome.match).capabilities?.iotEdge === true,
      initialTwin: ctx.initialTwin,
    },
    deps.warn,
  );
};

export const WORK_STEPS: readonly Step[] = [injectedDelay, readPrevious, allocate, planHubChanges, applyHubChanges];

/** Runs `steps` in order over one context, each timed and explained when the context is traced. */
export async function runSteps(ctx: RegistrationContext, steps: readonly Step[], deps: StepDeps): Promise<void> {
  const trace = ctx.trace;
  if (!trace) {
    for (const step of steps) await step(ctx, deps);
    return;
  }
  for (const step of steps) {
    const startedAt = performance.now();
    try {
      await step(ctx, deps);
    } catch (err) {
      trace.failed(step.name, startedAt, ctx, err);
      throw err;
    }
    trace.passed(step.name, startedAt, ctx);
  }
}
