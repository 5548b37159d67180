// The registration engine (design.md, "The flow of one registration"): transports call it and
// nothing else. One named pipeline:
//   findEnrollment → attest → openOperation → allocate → applyToHub → record → respond

import type { WebhookCall, WebhookOptions } from "../allocation/custom-webhook.js";
import { compileLocationRules } from "../allocation/location-rules.js";
import { type EnrollmentSettings, effectiveReprovisionPolicy } from "../domain/enrollment.js";
import { ProvisioError, toProvisioError } from "../domain/errors.js";
import { newEtag, nowUtc } from "../domain/etag.js";
import { type IdScope, idKey, isValidRegistrationId } from "../domain/ids.js";
import type { Instance } from "../domain/instance.js";
import type { DeviceRegistrationResult, RegistrationOperation } from "../domain/operation.js";
import { type DeviceRegistrationState, lastAssignment, type RegistrationRecord } from "../domain/registration-state.js";
import { RateLimiter } from "../security/rate-limit.js";
import type { DevicePathStore } from "../store/store.js";
import { AllocationFailure, allocate } from "./allocate.js";
import { applyToHub } from "./apply-to-hub.js";
import { dryRun } from "./dry-run.js";
import { type AttestedDevice, type DeviceCredentials, type EnrollmentMatch, findAndAttest } from "./find-enrollment.js";
import { GroupHints } from "./group-hints.js";
import type { HubClientPool } from "./hub-client-pool.js";
import type { InstanceCache } from "./instance-cache.js";
import { newOperationId } from "./operation-id.js";
import type { ScopeCache } from "./scope-cache.js";

export interface RegisterRequest {
  idScope: string;
  registrationId: string;
  /** The parsed request body: `{registrationId, payload?, tpm?}`. */
  body: unknown;
  credentials: DeviceCredentials;
  /** The device's address; a function because asking the socket costs a syscall few policies need. */
  sourceAddress: () => string;
}

/** A device's attestation, kept by session transports between requests (see `authenticate`). */
export type SessionAttestation = AttestedDevice | { disabled: EnrollmentMatch };

/** What a transport sends back: an operation status, final or still assigning. */
export interface OperationReply {
  operation: RegistrationOperation;
  final: boolean;
  /** Seconds the device should wait before polling (assigning only). */
  retryAfter?: number;
}

export interface EngineOptions {
  /** A register call waits this long for the work to finish before answering "assigning". */
  answerWithinMs: number;
  retryAfterSeconds: number;
  /** Registrations per minute per provisioning service; 0 = unlimited (behaviors.md §9). */
  registrationsPerMinute: number;
  /** Custom allocation webhook timeout and retry delays (behaviors.md §4.5). */
  webhook: Partial<WebhookOptions>;
}

export const DEFAULT_ENGINE_OPTIONS: EngineOptions = {
  answerWithinMs: 1_500,
  retryAfterSeconds: 1,
  registrationsPerMinute: 0,
  webhook: {},
};

/** Operations are answerable for this long (device-api.md §11.11: "several minutes"). */
export const OPERATION_TTL_MS = 60 * 60 * 1000;

/** The attestation section of a result: `symmetricKey` or `x509`, with the group if any (device-api.md §3.3). */
function attestationSection(match: EnrollmentMatch): Pick<DeviceRegistrationResult, "symmetricKey" | "x509"> {
  const settings = match.kind === "individual" ? match.enrollment : match.group;
  const section = match.kind === "group" ? { enrollmentGroupId: match.group.enrollmentGroupId } : {};
  return settings.attestation.type === "x509" ? { x509: section } : { symmetricKey: section };
}

function settingsOf(match: EnrollmentMatch): EnrollmentSettings {
  return match.kind === "individual" ? match.enrollment : match.group;
}

/**
 * The device-facing view of a registration record (device-api.md §3.3). A hub and device id are
 * told only with `assigned`: a failed or disabled record keeps the last assignment for the
 * operator, but the device must not read it as one.
 */
function resultOf(state: DeviceRegistrationState, match: EnrollmentMatch): DeviceRegistrationResult {
  if (state.status === "assigned") return { ...state, ...attestationSection(match) };
  const { assignedHub: _hub, deviceId: _device, ...rest } = state;
  return { ...rest, ...attestationSection(match) };
}

export class RegistrationEngine {
  readonly #locators = new Map<string, { rules: unknown; locate: (a: string) => string | undefined }>();
  readonly #limiter: RateLimiter;
  readonly #groupHints = new GroupHints();

  constructor(
    private readonly store: DevicePathStore,
    private readonly instances: InstanceCache,
    private readonly scopes: ScopeCache,
    private readonly hubClients: HubClientPool,
    private readonly options: EngineOptions = DEFAULT_ENGINE_OPTIONS,
    private readonly onInternal: (err: unknown) => void = () => undefined,
    private readonly onRefused: (idScope: string, registrationId: string, detail: string) => void = () => undefined,
  ) {
    this.#limiter = new RateLimiter(options.registrationsPerMinute);
  }

  /** CONNECT-time check for session transports (MQTT, AMQP): the device attests; disabled is fine here. */
  /**
   * Resolves to the session's attestation, which the session hands back to `register` and
   * `operationStatus`: credentials cannot change within an MQTT/AMQP session, so attesting once
   * per session is enough.
   */
  async authenticate(req: Omit<RegisterRequest, "body">): Promise<SessionAttestation> {
    return this.findEnrollment(this.deviceInstance(req).idScope, req);
  }

  /** PUT …/register, MQTT iotdps-register. */
  async register(req: RegisterRequest, session?: SessionAttestation): Promise<OperationReply> {
    const instance = this.deviceInstance(req);
    const payload = this.checkBody(req);
    const attested = session ?? (await this.findEnrollment(instance.idScope, req));
    const wait = this.#limiter.take(instance.idScope);
    if (wait !== undefined) throw new ProvisioError("throttled", {}, wait);
    const started = Date.now();
    const operationId = newOperationId(started);
    if ("disabled" in attested) {
      const previous = await this.store.getRegistration(instance.idScope, req.registrationId);
      const operation = await this.record(
        instance.idScope,
        req.registrationId,
        operationId,
        attested.disabled,
        { status: "disabled" },
        previous?.state,
      );
      return { operation, final: true };
    }
    const work = this.runPipeline(instance, req, attested, operationId, payload);
    // A wait of 0 always answers "assigning" (the work may otherwise finish within microtasks).
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(resolve, this.options.answerWithinMs, undefined);
    });
    const finished = this.options.answerWithinMs > 0 ? await Promise.race([work, timeout]) : undefined;
    clearTimeout(timer);
    if (finished) return { operation: finished, final: true };
    // Still working: leave an "assigning" operation to poll (never over a final one).
    const assigning: RegistrationOperation = {
      operationId,
      registrationId: req.registrationId,
      status: "assigning",
      registrationState: { registrationId: req.registrationId, status: "assigning" },
      createdDateTimeUtc: new Date(started).toISOString(),
    };
    await this.store.putOperation(instance.idScope, assigning, { absent: true });
    return { operation: assigning, final: false, retryAfter: this.options.retryAfterSeconds };
  }

  /** GET …/operations/{id}, MQTT iotdps-get-operationstatus: the device must attest again. */
  async operationStatus(
    req: Omit<RegisterRequest, "body">,
    operationId: string,
    session?: SessionAttestation,
  ): Promise<OperationReply> {
    const instance = this.deviceInstance(req);
    if (!session) await this.findEnrollment(instance.idScope, req);
    const op = await this.store.getOperation(instance.idScope, operationId);
    if (!op || idKey(op.registrationId) !== idKey(req.registrationId)) {
      throw new ProvisioError("operationNotFound", { id: operationId });
    }
    const final = op.status !== "assigning";
    return final ? { operation: op, final } : { operation: op, final, retryAfter: this.options.retryAfterSeconds };
  }

  /** POST …/registrations/{id}: the device's current registration state, after attestation. */
  async registrationStatus(req: Omit<RegisterRequest, "body">): Promise<DeviceRegistrationResult> {
    const instance = this.deviceInstance(req);
    const attested = await this.findEnrollment(instance.idScope, req);
    const record = await this.store.getRegistration(instance.idScope, req.registrationId);
    if (!record) throw new ProvisioError("registrationNotFound", { id: req.registrationId });
    return resultOf(record.state, "disabled" in attested ? attested.disabled : attested.match);
  }

  /** What a registration would do now, without doing it (dry-run.ts). */
  dryRun(idScope: IdScope, registrationId: string, body: unknown): Promise<Record<string, unknown>> {
    return dryRun(this.store, this.scopes, this.instanceOf(idScope), registrationId, body);
  }

  /** Deprovisioning: the device's identity leaves its assigned hub (iothub-api.md §8.3). */
  async deprovision(idScope: IdScope, state: DeviceRegistrationState): Promise<void> {
    const placed = lastAssignment(state);
    if (!placed) return;
    const config = await this.scopes.get(idScope);
    const hub = config.linkedHubs.find((h) => h.name.toLowerCase() === placed.assignedHub.toLowerCase());
    if (!hub) {
      throw new ProvisioError("hubApplyFailed", { hub: placed.assignedHub, detail: "the hub is no longer linked" });
    }
    try {
      await this.hubClients.clientFor(hub).deleteDevice(placed.deviceId);
    } catch (err) {
      throw new ProvisioError("hubApplyFailed", {
        hub: hub.name,
        detail: err instanceof Error ? err.message : String(err),
      });
    }
  }

  /**
   * Every device request starts here: a registration id outside DPS's rules is refused before
   * anything is read, attested or written (behaviors.md §1.1), then the scope must exist.
   */
  private deviceInstance(req: { idScope: string; registrationId: string }): Instance {
    if (!isValidRegistrationId(req.registrationId)) {
      throw new ProvisioError("invalidRegistrationId", { id: req.registrationId });
    }
    return this.instanceOf(req.idScope);
  }

  private instanceOf(idScope: string): Instance {
    const instance = this.instances.byScope(idScope);
    if (!instance) throw new ProvisioError("unknownIdScope", { scope: idScope });
    return instance;
  }

  private checkBody(req: RegisterRequest): unknown {
    const body = req.body;
    if (body !== undefined && body !== null && (typeof body !== "object" || Array.isArray(body))) {
      throw new ProvisioError("invalidBody", { detail: "The body must be a JSON object with 'registrationId'." });
    }
    const b = (body ?? {}) as Record<string, unknown>;
    if (typeof b.registrationId === "string" && !isValidRegistrationId(b.registrationId)) {
      throw new ProvisioError("invalidRegistrationId", { id: b.registrationId });
    }
    if (
      b.registrationId !== undefined &&
      (typeof b.registrationId !== "string" || idKey(b.registrationId) !== idKey(req.registrationId))
    ) {
      throw new ProvisioError("registrationIdMismatch", {
        bodyId: String(b.registrationId),
        pathId: req.registrationId,
      });
    }
    const payload = b.payload;
    if (payload !== undefined && payload !== null && (typeof payload !== "object" || Array.isArray(payload))) {
      throw new ProvisioError("invalidPayload");
    }
    return payload ?? undefined;
  }

  /** Steps 1-2: findEnrollment → attest. */
  private async findEnrollment(idScope: IdScope, req: Omit<RegisterRequest, "body">): Promise<SessionAttestation> {
    const [individual, config] = await Promise.all([
      this.store.getEnrollment(idScope, req.registrationId),
      this.scopes.get(idScope),
    ]);
    // Symmetric-key devices try their last group first. X.509 attestation keeps the scope's own
    // array: it caches what it derives from the groups by that array.
    const device = `${idScope}/${idKey(req.registrationId)}`;
    const symmetric = req.credentials.sasToken !== undefined;
    const attested = findAndAttest(
      idScope,
      req.registrationId,
      req.credentials,
      individual,
      symmetric ? this.#groupHints.order(device, config.groups) : config.groups,
      config.caCertificates,
      // The device hears a safe summary; the log says which certificates arrived and why they failed.
      (detail) => this.onRefused(idScope, req.registrationId, detail),
    );
    const match = "disabled" in attested ? attested.disabled : attested.match;
    if (symmetric && match.kind === "group") this.#groupHints.remember(device, match.group.enrollmentGroupId);
    return attested;
  }

  /** Steps 4-6: allocate → applyToHub → record. Never rejects: failures are recorded as `failed`. */
  private async runPipeline(
    instance: Instance,
    req: RegisterRequest,
    attested: AttestedDevice,
    operationId: string,
    payload: unknown,
  ): Promise<RegistrationOperation> {
    const scope = instance.idScope;
    const settings = settingsOf(attested.match);
    let before: DeviceRegistrationState | undefined;
    let webhookCalls: WebhookCall[] | undefined;
    try {
      const [config, previous] = await Promise.all([
        this.scopes.get(scope),
        this.store.getRegistration(scope, req.registrationId),
      ]);
      before = previous?.state;
      const allocation = await allocate({
        instance,
        match: attested.match,
        settings,
        registrationId: req.registrationId,
        sourceAddress: req.sourceAddress,
        linkedHubs: config.linkedHubs,
        locate: this.locator(instance),
        previous: previous?.state,
        attestation: attested.thumbprint
          ? { x509: { clientCertificate: { sha1Thumbprint: attested.thumbprint } } }
          : { symmetricKey: {} },
        devicePayload: payload,
        webhook: this.options.webhook,
      });
      webhookCalls = allocation.webhookCalls;
      const target = allocation.target;
      const initialTwin = allocation.initialTwin ?? settings.initialTwin;
      const was = lastAssignment(previous?.state);
      const applied = await applyToHub(this.hubClients, {
        target,
        ...(was
          ? {
              previous: {
                hubName: was.assignedHub,
                hub: config.linkedHubs.find((h) => h.name.toLowerCase() === was.assignedHub?.toLowerCase()),
                deviceId: was.deviceId,
              },
            }
          : {}),
        deviceId: attested.deviceId,
        ...(attested.keys ? { keys: attested.keys } : {}),
        ...(attested.thumbprint ? { thumbprint: attested.thumbprint } : {}),
        iotEdge: settings.capabilities?.iotEdge === true,
        ...(initialTwin ? { initialTwin } : {}),
        policy: effectiveReprovisionPolicy(settings),
      });
      return await this.record(
        scope,
        req.registrationId,
        operationId,
        attested.match,
        {
          status: "assigned",
          assignedHub: applied.hub.name,
          deviceId: attested.deviceId,
          substatus: applied.substatus,
          ...(allocation.payload !== undefined ? { payload: allocation.payload } : {}),
        },
        before,
        { devicePayload: payload, ...(webhookCalls ? { webhookCalls } : {}) },
      );
    } catch (caught) {
      const err = caught instanceof AllocationFailure ? caught.error : caught;
      if (caught instanceof AllocationFailure) webhookCalls = caught.webhookCalls;
      const e = toProvisioError(err);
      if (!(err instanceof ProvisioError)) this.onInternal(err);
      return this.record(
        scope,
        req.registrationId,
        operationId,
        attested.match,
        {
          status: "failed",
          errorCode: e.errorCode,
          errorMessage: e.message,
        },
        before,
        { devicePayload: payload, ...(webhookCalls ? { webhookCalls } : {}) },
      ).catch((recordErr: unknown) => {
        this.onInternal(recordErr);
        return { operationId, registrationId: req.registrationId, status: "failed", createdDateTimeUtc: nowUtc() };
      });
    }
  }

  /** Step 6: the registration record and the final operation, together. */
  private async record(
    scope: IdScope,
    registrationId: string,
    operationId: string,
    match: EnrollmentMatch,
    outcome: Partial<DeviceRegistrationState> & Pick<DeviceRegistrationState, "status">,
    /** The record as it was: its created time stays, and a failed or disabled attempt keeps its assignment. */
    before: DeviceRegistrationState | undefined,
    kept: { devicePayload?: unknown; webhookCalls?: WebhookCall[] } = {},
  ): Promise<RegistrationOperation> {
    const now = nowUtc();
    const state: DeviceRegistrationState = {
      registrationId: registrationId as DeviceRegistrationState["registrationId"],
      createdDateTimeUtc: before?.createdDateTimeUtc ?? now,
      ...(outcome.status === "assigned" ? {} : lastAssignment(before)),
      ...outcome,
      lastUpdatedDateTimeUtc: now,
      etag: newEtag(),
    };
    const record: RegistrationRecord = {
      state,
      ...(match.kind === "group" ? { enrollmentGroupId: match.group.enrollmentGroupId } : {}),
      ...(kept.devicePayload !== undefined ? { devicePayload: kept.devicePayload } : {}),
      ...(kept.webhookCalls ? { webhookCalls: kept.webhookCalls } : {}),
    };
    const operation: RegistrationOperation = {
      operationId,
      registrationId,
      status: state.status,
      registrationState: resultOf(state, match),
      createdDateTimeUtc: now,
    };
    await this.store.commitRegistration(scope, record, operation);
    return operation;
  }

  private locator(instance: Instance): (address: string) => string | undefined {
    const rules = instance.deviceLocationRules ?? [];
    const cached = this.#locators.get(instance.idScope);
    if (cached && cached.rules === rules) return cached.locate;
    const locate = compileLocationRules(rules);
    this.#locators.set(instance.idScope, { rules, locate });
    return locate;
  }
}
