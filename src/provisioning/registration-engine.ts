// The registration engine: the device port (device-port.ts) over the named steps of a
// registration (registration-steps.ts). It owns one rule of its own: a register call answers
// within `answerWithinMs` — `assigned`, `failed` or `disabled` when the work is done by then,
// else `assigning` with an operation the device polls (device-api.md §1).
import type { WebhookOptions } from "../allocation/custom-webhook.js";
import type { AttestationOutcome } from "../attestation/attestation-outcome.js";
import { activationBlob } from "../attestation/tpm/activation-blob.js";
import { parseRsaPublic } from "../attestation/tpm/tpm-public.js";
import { withAttempt } from "../domain/attempt.js";
import type { EnrollmentMatch } from "../domain/enrollment-match.js";
import { settingsOf } from "../domain/enrollment-match.js";
import { ProvisioError, toProvisioError } from "../domain/errors.js";
import { newEtag, nowUtc } from "../domain/etag.js";
import { type IdScope, idKey, isValidRegistrationId } from "../domain/ids.js";
import type { DeviceRegistrationResult, OperationCarrier, RegistrationOperation } from "../domain/operation.js";
import { type DeviceRegistrationState, lastAssignment, type RegistrationRecord } from "../domain/registration-state.js";
import type { DiagnosticLog } from "../observability/diagnostic-log.js";
import type { Logger } from "../observability/logger.js";
import { type DeviceProtocol, type EngineMetrics, NO_METRICS } from "../observability/metrics.js";
import type { RateLimit } from "../security/rate-limit.js";
import type { DevicePathStore, IntentSettlement, RefusedAttemptStore } from "../store/store.js";
import { removeFromOldHub } from "./apply-to-hub.js";
import { AttemptTrace } from "./attempt-trace.js";
import { overloadRetryAfter, pollInterval } from "./backoff.js";
import {
  type DevicePort,
  type DeviceReply,
  type DeviceRequest,
  type DeviceSession,
  errorReply,
  operationReply,
  type RegisterRequest,
} from "./device-port.js";
import { dryRunReport, parseDryRunEvidence } from "./dry-run.js";
import type { FaultInjection } from "./fault-injection.js";
import type { HubClientPool } from "./hub-client-pool.js";
import type { InFlightRegistrations } from "./in-flight.js";
import type { InstanceCache } from "./instance-cache.js";
import { NetworkFilters } from "./network-filters.js";
import { newOperationId } from "./operation-id.js";
import type { RecordCounts } from "./record-counts.js";
import {
  ADMISSION_STEPS,
  admissionOf,
  DEVICE_STEPS,
  hubIntentOf,
  type RegistrationContext,
  runSteps,
  type StepDeps,
  TpmChallengeIssued,
  WORK_STEPS,
} from "./registration-steps.js";
import type { ScopeViews } from "./scope-views.js";

export interface EngineOptions {
  /** A register call waits this long for the work to finish before answering "assigning". */
  answerWithinMs: number;
  /**
   * This node, as the carrier of the operations it leaves "assigning", and how long its lease on
   * them runs without renewal (the server renews it while the work goes on).
   */
  carrier: { node: string; leaseMs: number };
  retryAfterSeconds: number;
  /** Custom allocation webhook timeout and retry delays (behaviors.md §4.5). */
  webhook: Partial<WebhookOptions>;
  /**
   * Register calls this node works on at once (attesting, or carried): past it a register is
   * answered 429 with a spread Retry-After, bounding CPU, memory and latency. 0: no bound.
   */
  maxInFlight: number;
  /** Tests only: the process kills itself at this point of the hub step (service.ts). */
  crashAt?: "afterHubWrite" | "afterCommit";
}

export const DEFAULT_ENGINE_OPTIONS: EngineOptions = {
  answerWithinMs: 1_500,
  carrier: { node: "local", leaseMs: 20_000 },
  maxInFlight: 0,
  retryAfterSeconds: 1,
  webhook: {},
};

/**
 * A finished operation is answerable for this long (device-api.md §11.11: "several minutes"): a
 * device polls within seconds of its Retry-After, so after this nobody can still be polling it.
 * One still carried stays as long as its carrier lives.
 */
export const OPERATION_TTL_MS = 15 * 60 * 1000;

export interface EngineParts {
  /** The device path's reads and writes, and where refused register calls are kept. */
  store: DevicePathStore & Pick<RefusedAttemptStore, "addRefusedAttempt">;
  /** IP filters and public network access; by default every address is let in. */
  network?: NetworkFilters;
  instances: Pick<InstanceCache, "byScope">;
  scopes: ScopeViews;
  hubs: HubClientPool;
  limiter: RateLimit;
  /** Status lookups per device (operation and registration); none: unlimited. */
  pollLimiter?: RateLimit;
  /** The registration records quota; none: unlimited. */
  records?: RecordCounts;
  /** Faults injected for rehearsals (PROVISIO_FAULTS); none: none. */
  faults?: FaultInjection;
  inFlight: InFlightRegistrations;
  log: Logger;
  /** DPS's metrics and Provisio's own (observability/metrics.ts); none when not given. */
  metrics?: EngineMetrics;
  /** DPS's DeviceOperations log lines (observability/diagnostic-log.ts); none when not given. */
  diagnostics?: DiagnosticLog;
  options?: Partial<EngineOptions>;
}

/** DPS writes the protocol of a device operation this way in its logs. */
const PROTOCOL_NAMES: Record<DeviceProtocol, string> = {
  http: "Http",
  mqtt: "Mqtt",
  mqttws: "Mqtt",
  amqp: "Amqp",
  amqpws: "Amqp",
};

/** A session transport's attestation: the outcome, kept for the session's next requests. */
interface EngineSession extends DeviceSession {
  readonly outcome: AttestationOutcome;
}

/** The attestation section of a result: `symmetricKey` or `x509`, with the group if any (device-api.md §3.3). */
function attestationSection(
  match: EnrollmentMatch,
  tpm: DeviceRegistrationResult["tpm"],
): Pick<DeviceRegistrationResult, "symmetricKey" | "x509" | "tpm"> {
  const section = match.kind === "group" ? { enrollmentGroupId: match.group.enrollmentGroupId } : {};
  switch (settingsOf(match).attestation.type) {
    case "x509":
      return { x509: section };
    case "tpm":
      return tpm ? { tpm } : {};
    default:
      return { symmetricKey: section };
  }
}

/**
 * An assigned TPM device's hub key, wrapped for its TPM (tpm-attestation.md §5): the device imports
 * it and signs its hub tokens inside the TPM. New keys on every registration roll it.
 */
function tpmSection(ctx: RegistrationContext): DeviceRegistrationResult["tpm"] {
  const outcome = ctx.outcome;
  if (!ctx.tpmKeys || outcome?.kind !== "attested" || outcome.credential.kind !== "keys") return undefined;
  const blob = activationBlob(
    parseRsaPublic(ctx.tpmKeys.endorsementKey, "endorsement key"),
    parseRsaPublic(ctx.tpmKeys.storageRootKey, "storage root key"),
    Buffer.from(outcome.credential.primaryKey, "base64"),
  );
  return { authenticationKey: blob.toString("base64") };
}

/**
 * The device-facing view of a registration record (device-api.md §3.3). A hub and device id are
 * told only with `assigned`: a failed or disabled record keeps the last assignment for the
 * operator, but the device must not read it as one; nor is a hub-cleanup notice its business.
 */
function resultOf(
  state: DeviceRegistrationState,
  match: EnrollmentMatch,
  tpm?: DeviceRegistrationResult["tpm"],
): DeviceRegistrationResult {
  if (state.status === "assigned") {
    const { errorMessage: _notice, ...shown } = state;
    return { ...shown, ...attestationSection(match, tpm) };
  }
  const { assignedHub: _hub, deviceId: _device, ...rest } = state;
  return { ...rest, ...attestationSection(match, undefined) };
}

export class RegistrationEngine implements DevicePort {
  readonly #parts: EngineParts;
  readonly #options: EngineOptions;
  readonly #deps: StepDeps;
  readonly #metrics: EngineMetrics;
  /** Open session-transport connections by scope, to close when the network settings refuse them. */
  readonly #watchers = new Map<string, Set<{ address: string; onRefused: () => void }>>();
  /** Final operations that could not be stored, with why. */
  readonly #unrecorded = new WeakMap<RegistrationOperation, ProvisioError>();
  /** Register calls between arrival and their work being carried (attesting, throttling). */
  #admitting = 0;

  constructor(parts: EngineParts) {
    this.#parts = parts;
    this.#metrics = parts.metrics ?? NO_METRICS;
    this.#options = { ...DEFAULT_ENGINE_OPTIONS, ...parts.options };
    this.#deps = {
      store: parts.store,
      instances: parts.instances,
      scopes: parts.scopes,
      hubs: parts.hubs,
      limiter: parts.limiter,
      ...(parts.records ? { records: parts.records } : {}),
      ...(parts.faults && !parts.faults.empty ? { faults: parts.faults } : {}),
      webhook: this.#options.webhook,
      warn: (message, fields) => parts.log.warn(fields, message),
      carrier: () => this.carrier(),
      network: parts.network ?? new NetworkFilters(),
      refusedByNetwork: (instance, address, rule) =>
        parts.log.warn(
          { idScope: instance.idScope, service: instance.name, address, rule, api: "deviceApi" },
          "refused by the provisioning service's network settings",
        ),
    };
  }

  admitsFrom(idScope: string, sourceAddress: string): boolean {
    const instance = this.#parts.instances.byScope(idScope);
    // An unknown scope is refused later, with its own reason.
    if (!instance) return true;
    const verdict = this.#deps.network.check(instance, sourceAddress, "deviceApi");
    if (!verdict.admit) this.#deps.refusedByNetwork(instance, sourceAddress, verdict.rule);
    return verdict.admit;
  }

  watchAdmission(idScope: string, sourceAddress: string, onRefused: () => void): () => void {
    const watcher = { address: sourceAddress, onRefused };
    let set = this.#watchers.get(idScope);
    if (!set) {
      set = new Set();
      this.#watchers.set(idScope, set);
    }
    set.add(watcher);
    return () => {
      const current = this.#watchers.get(idScope);
      current?.delete(watcher);
      if (current?.size === 0) this.#watchers.delete(idScope);
    };
  }

  /**
   * An instance's network settings may have changed (or every instance's, without a scope): open
   * connections they now refuse are closed.
   */
  networkChanged(idScope?: string): void {
    const scopes = idScope === undefined ? [...this.#watchers.keys()] : [idScope];
    for (const scope of scopes) {
      for (const w of [...(this.#watchers.get(scope) ?? [])]) {
        if (!this.admitsFrom(scope, w.address)) w.onRefused();
      }
    }
  }

  async openSession(
    req: DeviceRequest,
  ): Promise<{ ok: true; session: DeviceSession } | { ok: false; reply: DeviceReply }> {
    const startedAt = Date.now();
    const ctx = this.context(req, undefined);
    // A session refused here never gets to register: its refusal is kept like a register call's.
    ctx.trace = new AttemptTrace();
    try {
      await runSteps(ctx, ADMISSION_STEPS, this.#deps);
      const session: EngineSession = { registrationId: req.registrationId, outcome: admissionOf(ctx).outcome };
      this.countAttestation(ctx);
      this.report("AttestationAttempt", req, startedAt, { status: 200 });
      return { ok: true, session };
    } catch (err) {
      this.countRefusal(ctx, err);
      const reply = this.failure(err, ctx);
      this.keepRefusal(ctx, err, reply);
      this.report("AttestationAttempt", req, startedAt, reply);
      return { ok: false, reply };
    }
  }

  async register(req: RegisterRequest, session?: DeviceSession): Promise<DeviceReply> {
    const startedAt = Date.now();
    return this.reported("RegisterDevice", req, startedAt, await this.registerReply(req, session));
  }

  async operationStatus(req: DeviceRequest, operationId: string, session?: DeviceSession): Promise<DeviceReply> {
    const startedAt = Date.now();
    const reply = await this.operationStatusReply(req, operationId, session);
    return this.reported("OperationStatusLookup", req, startedAt, reply);
  }

  async registrationStatus(req: DeviceRequest): Promise<DeviceReply> {
    const startedAt = Date.now();
    return this.reported("DeviceRegistrationStatusLookup", req, startedAt, await this.registrationStatusReply(req));
  }

  /** One DeviceOperations line (behaviors.md §11) for a device request and its reply; the reply passes through. */
  private reported(operation: string, req: DeviceRequest, startedAt: number, reply: DeviceReply): DeviceReply {
    this.report(operation, req, startedAt, reply);
    return reply;
  }

  private report(
    operation: string,
    req: DeviceRequest,
    startedAt: number,
    reply: DeviceReply | { kind?: undefined; status: number },
  ): void {
    const diagnostics = this.#parts.diagnostics;
    if (!diagnostics) return;
    diagnostics.write({
      category: "DeviceOperations",
      operation,
      status: reply.status,
      ...(reply.kind === "error" ? { description: reply.body.message, correlationId: reply.body.trackingId } : {}),
      ...(reply.kind === "operation" ? { correlationId: reply.body.operationId } : {}),
      startedAt,
      callerIp: req.sourceAddress(),
      service: this.#parts.instances.byScope(req.idScope)?.name ?? req.idScope,
      id: req.registrationId,
      type: "Registration",
      ...(req.protocol ? { protocol: PROTOCOL_NAMES[req.protocol] } : {}),
    });
  }

  private async registerReply(req: RegisterRequest, session?: DeviceSession): Promise<DeviceReply> {
    const ctx = this.context(req, session);
    const bound = this.#options.maxInFlight;
    const load = this.#admitting + this.#parts.inFlight.size;
    if (bound > 0 && load >= bound) {
      // Shed before any work: the device comes back later, spread out.
      const err = new ProvisioError("throttled", {}, overloadRetryAfter(load, bound));
      this.#metrics.throttled(this.#parts.instances.byScope(req.idScope)?.name ?? "", ctx.protocol);
      return this.failure(err, ctx);
    }
    this.#admitting++;
    ctx.trace = new AttemptTrace();
    try {
      await runSteps(ctx, DEVICE_STEPS, this.#deps);
    } catch (err) {
      this.countRefusal(ctx, err);
      const reply = this.failure(err, ctx);
      this.keepRefusal(ctx, err, reply);
      return reply;
    } finally {
      this.#admitting--;
    }
    // A session transport counted its attestation when the session opened.
    if (!session) this.countAttestation(ctx);
    const started = Date.now();
    const operationId = newOperationId(started);
    const { scope, match } = admissionOf(ctx);
    const work = this.work(ctx, operationId).then((op) => {
      this.#metrics.registration(
        ctx.instance?.name ?? "",
        op.registrationState?.assignedHub ?? ctx.applied?.hub.name ?? "",
        op.status === "assigned" ? "assigned" : op.status === "disabled" ? "disabled" : "failed",
        ctx.protocol,
        settingsOf(match).attestation.type,
        (Date.now() - started) / 1000,
      );
      for (const call of ctx.allocation?.webhookCalls ?? []) {
        this.#metrics.webhookCall(call.status === undefined ? "error" : String(call.status), call.durationMs / 1000);
      }
      return op;
    });
    this.#parts.inFlight.carry(scope, operationId, work);
    // A wait of 0 always answers "assigning" (the work may otherwise finish within microtasks).
    const { answerWithinMs } = this.#options;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(resolve, answerWithinMs, undefined);
    });
    const finished = answerWithinMs > 0 ? await Promise.race([work, timeout]) : undefined;
    clearTimeout(timer);
    const unrecorded = finished && this.#unrecorded.get(finished);
    if (unrecorded) return this.failure(unrecorded, ctx);
    if (finished) return operationReply(finished);
    // Still working: leave an "assigning" operation to poll (never over a final one).
    const assigning: RegistrationOperation = {
      operationId,
      registrationId: req.registrationId,
      status: "assigning",
      registrationState: { registrationId: req.registrationId, status: "assigning" },
      createdDateTimeUtc: new Date(started).toISOString(),
      carrier: this.carrier(),
    };
    try {
      await this.#parts.store.putOperation(scope, assigning, { absent: true });
    } catch (err) {
      return this.failure(err, ctx);
    }
    return operationReply(assigning, this.pollAfter(assigning));
  }

  private async operationStatusReply(
    req: DeviceRequest,
    operationId: string,
    session?: DeviceSession,
  ): Promise<DeviceReply> {
    const ctx = this.context(req, session);
    try {
      await runSteps(ctx, ADMISSION_STEPS, this.#deps);
      const { scope } = admissionOf(ctx);
      await this.pollAllowed(ctx);
      const op = await this.#parts.store.getOperation(scope, operationId);
      if (!op || idKey(op.registrationId) !== idKey(req.registrationId)) {
        throw new ProvisioError("operationNotFound", { id: operationId });
      }
      const current = await this.unlessAbandoned(scope, op);
      return operationReply(current, this.pollAfter(current));
    } catch (err) {
      return this.failure(err, ctx);
    }
  }

  /**
   * Device polling (behaviors.md §9: 5 per 10 s per device), counted once the device proved who it
   * is, so nobody can spend another device's allowance. Over it: 429 and when to come back.
   */
  private async pollAllowed(ctx: RegistrationContext): Promise<void> {
    const limiter = this.#parts.pollLimiter;
    if (!limiter) return;
    const wait = await limiter.take(`${ctx.idScope}/${idKey(ctx.registrationId)}`);
    if (wait !== undefined) {
      this.#metrics.throttled(ctx.instance?.name ?? "", ctx.protocol);
      throw new ProvisioError("throttled", {}, wait);
    }
  }

  /**
   * An operation whose carrier's lease ran out (the node crashed or was killed) is failed here,
   * by whichever node the device polls, so no device polls "assigning" forever. The device is
   * told to register again.
   */
  private async unlessAbandoned(scope: IdScope, op: RegistrationOperation): Promise<RegistrationOperation> {
    if (op.status !== "assigning" || !op.carrier || Date.parse(op.carrier.until) >= Date.now()) return op;
    const error = new ProvisioError("carrierLost", {});
    const failed: RegistrationOperation = {
      operationId: op.operationId,
      registrationId: op.registrationId,
      status: "failed",
      registrationState: {
        registrationId: op.registrationId,
        status: "failed",
        errorCode: error.errorCode,
        errorMessage: error.message,
        lastUpdatedDateTimeUtc: nowUtc(),
      },
      createdDateTimeUtc: op.createdDateTimeUtc,
    };
    await this.#parts.store.putOperation(scope, failed);
    this.#parts.log.warn(
      { idScope: scope, operationId: op.operationId, registrationId: op.registrationId, carrier: op.carrier.node },
      "registration abandoned by a node that stopped; failed it so the device registers again",
    );
    return failed;
  }

  private async registrationStatusReply(req: DeviceRequest): Promise<DeviceReply> {
    const ctx = this.context(req, undefined);
    try {
      await runSteps(ctx, ADMISSION_STEPS, this.#deps);
      const { scope, match } = admissionOf(ctx);
      await this.pollAllowed(ctx);
      const record = await this.#parts.store.getRegistration(scope, req.registrationId);
      if (!record) throw new ProvisioError("registrationNotFound", { id: req.registrationId });
      return { kind: "registration", status: 200, body: resultOf(record.state, match) };
    } catch (err) {
      return this.failure(err, ctx);
    }
  }

  /** What a registration would do now, without doing it: the same steps in plan mode (dry-run.ts). */
  async dryRun(idScope: IdScope, registrationId: string, body: unknown): Promise<Record<string, unknown>> {
    const evidence = parseDryRunEvidence(body);
    const ctx: RegistrationContext = {
      mode: "plan",
      idScope,
      registrationId,
      evidence: evidence.credentials,
      sourceAddress: () => evidence.sourceAddress ?? "",
      body: undefined,
      payload: evidence.payload,
      ...(evidence.enrollmentGroupId ? { assumeGroup: evidence.enrollmentGroupId } : {}),
      ...(evidence.callWebhook ? { callWebhook: true } : {}),
    };
    await runSteps(ctx, [...DEVICE_STEPS, ...WORK_STEPS], this.#deps);
    return dryRunReport(ctx, evidence);
  }

  /** Deprovisioning: the device's identity leaves its assigned hub (iothub-api.md §8.3). */
  async deprovision(idScope: IdScope, state: DeviceRegistrationState): Promise<void> {
    const placed = lastAssignment(state);
    if (!placed) return;
    const instance = this.#parts.instances.byScope(idScope);
    if (!instance) throw new ProvisioError("unknownIdScope", { scope: idScope });
    const hub = (await this.#parts.scopes.get(instance)).linkedHub(placed.assignedHub);
    if (!hub) {
      throw new ProvisioError("hubApplyFailed", { hub: placed.assignedHub, detail: "the hub is no longer linked" });
    }
    try {
      await this.#parts.hubs.clientFor(hub).deleteDevice(placed.deviceId);
    } catch (err) {
      throw new ProvisioError("hubApplyFailed", {
        hub: hub.name,
        detail: err instanceof Error ? err.message : String(err),
      });
    }
  }

  /** A device request's context; a session transport's earlier attestation stands. */
  private context(req: DeviceRequest | RegisterRequest, session: DeviceSession | undefined): RegistrationContext {
    const ctx: RegistrationContext = {
      mode: "register",
      idScope: req.idScope,
      registrationId: req.registrationId,
      evidence: req.credentials,
      sourceAddress: req.sourceAddress,
      body: "body" in req ? req.body : undefined,
      ...(req.tpm ? { presentedTpm: req.tpm } : {}),
      ...(req.protocol ? { protocol: req.protocol } : {}),
      ...(session ? { attested: (session as EngineSession).outcome } : {}),
    };
    return ctx;
  }

  /** An attestation that proved the device (a disabled enrollment proves nothing), for the metrics. */
  private countAttestation(ctx: RegistrationContext): void {
    if (ctx.outcome?.kind === "attested") this.#metrics.attestation(ctx.instance?.name ?? "", ctx.protocol, true);
  }

  /** A refused attestation or a throttled register, for the metrics. */
  private countRefusal(ctx: RegistrationContext, err: unknown): void {
    const service = ctx.instance?.name ?? "";
    if (err instanceof ProvisioError && err.errorName === "throttled") this.#metrics.throttled(service, ctx.protocol);
    else if (ctx.outcome?.kind === "refused") this.#metrics.attestation(service, ctx.protocol, false);
  }

  /** Retry-After of a poll: longer the longer the operation has been working. */
  private pollAfter(op: RegistrationOperation): number {
    return pollInterval(Date.now() - Date.parse(op.createdDateTimeUtc), this.#options.retryAfterSeconds);
  }

  private crashIf(point: EngineOptions["crashAt"]): void {
    if (this.#options.crashAt === point) process.kill(process.pid, "SIGKILL");
  }

  /** This node's claim on work it starts now, for its lease (renewed by the server while work goes on). */
  private carrier(): OperationCarrier {
    return {
      node: this.#options.carrier.node,
      until: new Date(Date.now() + this.#options.carrier.leaseMs).toISOString(),
    };
  }

  /** The intent of a registration whose work is over, handed to the settling after a lease. */
  private async releaseIntent(ctx: RegistrationContext, scope: IdScope): Promise<void> {
    const intent = hubIntentOf(ctx, { node: "", until: this.carrier().until });
    if (intent) await this.#parts.store.putHubIntent(scope, intent);
  }

  /**
   * A register call refused before any work, kept to explain it (domain/attempt.ts): not when
   * the scope or id names nothing that could be asked about, nor when the refusal is the rate
   * limit's (busy moments should not cost writes).
   */
  private keepRefusal(ctx: RegistrationContext, err: unknown, reply: DeviceReply): void {
    const instance = ctx.instance;
    if (!instance || !ctx.trace || !isValidRegistrationId(ctx.registrationId)) return;
    if (err instanceof ProvisioError && err.errorName === "throttled") return;
    const attempt = ctx.trace.attempt(ctx, {
      outcome: "refused",
      ...(reply.kind === "error" ? { errorCode: reply.body.errorCode, message: reply.body.message } : {}),
    });
    this.#parts.store.addRefusedAttempt(instance.idScope, ctx.registrationId, attempt).catch((e: unknown) => {
      this.#parts.log.warn({ err: e, idScope: instance.idScope }, "could not keep a refused registration attempt");
    });
  }

  /** A refusal or an unexpected failure before any work began, as the device's reply. */
  private failure(err: unknown, ctx: RegistrationContext): DeviceReply {
    if (err instanceof TpmChallengeIssued) {
      return {
        kind: "challenge",
        status: 401,
        body: {
          message:
            "Activate this authenticationKey in the TPM and register again with a SAS token signed by the key it holds.",
          authenticationKey: err.authenticationKey,
          keyName: "registration",
        },
      };
    }
    if (!(err instanceof ProvisioError)) {
      this.#parts.log.error(
        { err, idScope: ctx.idScope, registrationId: ctx.registrationId },
        "registration failed unexpectedly",
      );
    } else if (ctx.outcome?.kind === "refused" && ctx.outcome.detail !== ctx.outcome.reason) {
      // The device hears a safe summary; the log says which certificates arrived and why they failed.
      this.#parts.log.warn(
        { idScope: ctx.idScope, registrationId: ctx.registrationId, detail: ctx.outcome.detail },
        "attestation refused",
      );
    }
    return errorReply(err);
  }

  /**
   * The work after the device attested: allocate, change the hubs, record. Never rejects:
   * a disabled enrollment is recorded `disabled`, a failure `failed`.
   */
  private async work(ctx: RegistrationContext, operationId: string): Promise<RegistrationOperation> {
    const { scope, match } = admissionOf(ctx);
    ctx.operationId = operationId;
    try {
      if (ctx.outcome?.kind === "disabled") {
        if (!ctx.previousRead) ctx.previous = await this.#parts.store.getRegistration(scope, ctx.registrationId);
        return await this.record(ctx, operationId, match, { status: "disabled" });
      }
      await runSteps(ctx, WORK_STEPS, this.#deps);
      this.crashIf("afterHubWrite");
      const applied = ctx.applied;
      if (!applied || ctx.outcome?.kind !== "attested") throw new Error("the registration steps ended without a hub");
      const op = await this.record(
        ctx,
        operationId,
        match,
        {
          status: "assigned",
          assignedHub: applied.hub.name,
          deviceId: ctx.outcome.deviceId,
          substatus: applied.substatus,
          ...(ctx.allocation?.payload !== undefined ? { payload: ctx.allocation.payload } : {}),
        },
        applied.leaving ? "keep" : "delete",
      );
      this.crashIf("afterCommit");
      if (applied.leaving) {
        // The record says the device lives on the new hub: now the old identity goes, and the
        // intent with it. An old hub that refuses is left to the intent's settling. The device is
        // assigned whatever happens here (the record is committed): nothing below may fail it.
        try {
          if (await removeFromOldHub(this.#parts.hubs, applied.leaving, this.#deps.warn)) {
            await this.#parts.store.deleteHubIntent(scope, operationId);
          } else {
            await this.releaseIntent(ctx, scope);
          }
        } catch (err) {
          this.#parts.log.warn(
            { err, idScope: scope, registrationId: ctx.registrationId },
            "the old hub's identity is left to the hub intent's settling",
          );
        }
      }
      return op;
    } catch (caught) {
      const e = toProvisioError(caught);
      if (e.errorName === "storageUnavailable") {
        this.#parts.log.warn(
          { err: caught, idScope: scope, registrationId: ctx.registrationId },
          "the store cannot take writes (disk full or read-only, or the database is unreachable); the device is told to retry",
        );
      } else if (!(caught instanceof ProvisioError)) {
        this.#parts.log.error(
          { err: caught, idScope: scope, registrationId: ctx.registrationId },
          "registration failed unexpectedly",
        );
      }
      // Hub writes may have happened (or land late, after a timeout): the intent is released, and
      // settled by any node once a hub's late answer can no longer arrive.
      const intent: IntentSettlement = ctx.intentWritten ? { releaseUntil: this.carrier().until } : "delete";
      return this.record(
        ctx,
        operationId,
        match,
        { status: "failed", errorCode: e.errorCode, errorMessage: e.message },
        intent,
      ).catch((recordErr: unknown) => {
        this.#parts.log.error({ err: recordErr, idScope: scope }, "could not record a failed registration");
        const unrecorded: RegistrationOperation = {
          operationId,
          registrationId: ctx.registrationId,
          status: "failed",
          createdDateTimeUtc: nowUtc(),
        };
        // Nothing was stored: the register call is answered with the store's error (503 and a
        // Retry-After when the disk is full), not with an operation no poll could find.
        this.#unrecorded.set(unrecorded, toProvisioError(recordErr));
        return unrecorded;
      });
    }
  }

  /** The registration record and the final operation, together. */
  private async record(
    ctx: RegistrationContext,
    operationId: string,
    match: EnrollmentMatch,
    outcome: Partial<DeviceRegistrationState> & Pick<DeviceRegistrationState, "status">,
    intent: IntentSettlement = "delete",
  ): Promise<RegistrationOperation> {
    const { scope } = admissionOf(ctx);
    const before = ctx.previous?.state;
    const now = nowUtc();
    const state: DeviceRegistrationState = {
      registrationId: ctx.registrationId as DeviceRegistrationState["registrationId"],
      // The created time stays; a failed or disabled attempt keeps the last assignment.
      createdDateTimeUtc: before?.createdDateTimeUtc ?? now,
      ...(outcome.status === "assigned" ? {} : lastAssignment(before)),
      ...outcome,
      lastUpdatedDateTimeUtc: now,
      etag: newEtag(),
    };
    const webhookCalls = ctx.allocation?.webhookCalls;
    const attempt = ctx.trace?.attempt(ctx, {
      outcome: state.status === "assigned" || state.status === "disabled" ? state.status : "failed",
      ...(state.errorCode !== undefined ? { errorCode: state.errorCode } : {}),
      ...(state.errorMessage !== undefined ? { message: state.errorMessage } : {}),
      operationId,
    });
    const record: RegistrationRecord = {
      state,
      ...(match.kind === "group" ? { enrollmentGroupId: match.group.enrollmentGroupId } : {}),
      ...(ctx.payload !== undefined ? { devicePayload: ctx.payload } : {}),
      ...(webhookCalls ? { webhookCalls } : {}),
      ...(attempt ? { attempts: withAttempt(ctx.previous?.attempts, attempt) } : {}),
    };
    const operation: RegistrationOperation = {
      operationId,
      registrationId: ctx.registrationId,
      status: state.status,
      registrationState: resultOf(state, match, state.status === "assigned" ? tpmSection(ctx) : undefined),
      createdDateTimeUtc: now,
    };
    await this.#parts.store.commitRegistration(scope, record, operation, intent);
    return operation;
  }
}
