// One built-in hub's identity registry and twins over the HubStore (iothub-api.md §4-5).
// Writes are optimistic: read, compute, write if the row version is unchanged, else retry.
import { ProvisioError } from "../domain/errors.js";
import { nowUtc } from "../domain/etag.js";
import type { DeviceIdentity, HubDeviceRecord } from "../domain/hub.js";
import type { JsonObject } from "../domain/json.js";
import type { HubStore } from "../store/hub-store.js";
import type { Page, PageRequest } from "../store/store.js";
import { identityFromBody, moduleIdentityFromBody } from "./device-identity.js";
import { deviceOfScope, parentScopeOf, scopesOf } from "./device-scopes.js";
import {
  applyReportedPatch,
  applyServicePatch,
  applyServiceReplace,
  desiredNotification,
  etagMatchesTwin,
  newTwin,
  TwinError,
} from "./twin.js";

/** What sessions need to hear about: desired changes to push, devices that may no longer connect. */
export interface RegistryEvents {
  desiredChanged(deviceId: string, notification: JsonObject, version: number): void;
  deviceRevoked(deviceId: string): void;
}

const ATTEMPTS = 5;

const unquote = (s: string): string => {
  const t = s.trim().replace(/^W\//, "");
  return t.length >= 2 && t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1) : t;
};

/** Twin errors are plain data in twin.ts; here they become catalogue errors. */
function asProvisioError(err: unknown, deviceId: string): unknown {
  if (!(err instanceof TwinError)) return err;
  return err.status === 412
    ? new ProvisioError("hubPreconditionFailed", { id: deviceId })
    : new ProvisioError("hubArgumentInvalid", { detail: err.message });
}

export class HubRegistry {
  #afterWrite: ((identity: DeviceIdentity) => Promise<void>) | undefined;

  constructor(
    readonly hubName: string,
    private readonly store: HubStore,
    private readonly events: RegistryEvents,
    /** Devices, or modules keyed `{deviceId}/{moduleId}` (kept under the hub name + "/modules"). */
    private readonly kind: "device" | "module" = "device",
  ) {}

  /** Work that follows every create or update of an identity (an edge device's system modules). */
  afterWrite(hook: (identity: DeviceIdentity) => Promise<void>): void {
    this.#afterWrite = hook;
  }

  #notFound(id: string): ProvisioError {
    return this.kind === "module"
      ? new ProvisioError("hubModuleNotFound", { id: id.replace("/", "' on device '") })
      : new ProvisioError("hubDeviceNotFound", { id });
  }

  #parse(body: unknown, id: string, existing: DeviceIdentity | undefined, now: string): DeviceIdentity {
    return this.kind === "module"
      ? moduleIdentityFromBody(body, id, existing, now)
      : identityFromBody(body, id, existing, now);
  }

  async get(deviceId: string): Promise<HubDeviceRecord> {
    const rec = await this.store.getHubDevice(this.hubName, deviceId);
    if (!rec) throw this.#notFound(deviceId);
    return rec;
  }

  find(deviceId: string): Promise<HubDeviceRecord | undefined> {
    return this.store.getHubDevice(this.hubName, deviceId);
  }

  list(page: PageRequest): Promise<Page<HubDeviceRecord>> {
    return this.store.listHubDevices(this.hubName, page);
  }

  /** PUT /devices/{id}: create without If-Match (409 if it exists), update with it. */
  async createOrUpdate(deviceId: string, body: unknown, ifMatch: string | undefined): Promise<DeviceIdentity> {
    if (!ifMatch) return this.create(deviceId, body);
    for (let attempt = 1; ; attempt++) {
      const existing = await this.store.getHubDevice(this.hubName, deviceId);
      if (!existing) throw this.#notFound(deviceId);
      if (unquote(ifMatch) !== "*" && unquote(ifMatch) !== existing.identity.etag) {
        throw new ProvisioError("hubPreconditionFailed", { id: deviceId });
      }
      const now = nowUtc();
      const identity = this.#parse(body, deviceId, existing.identity, now);
      if (this.kind === "device") await this.checkParent(identity, existing.identity);
      const record = { identity, twin: existing.twin, rowVersion: 0 };
      const r = await this.store.putHubDevice(this.hubName, record, existing.rowVersion);
      if (r.ok) {
        if (identity.status === "disabled" || authChanged(existing.identity, identity)) {
          this.events.deviceRevoked(deviceId);
        }
        await this.#afterWrite?.(identity);
        return identity;
      }
      if (attempt >= ATTEMPTS) throw new ProvisioError("hubPreconditionFailed", { id: deviceId });
    }
  }

  /** Create only: the insert itself tells whether the id is taken, so nothing is read first. */
  private async create(deviceId: string, body: unknown): Promise<DeviceIdentity> {
    const now = nowUtc();
    const identity = this.#parse(body, deviceId, undefined, now);
    if (this.kind === "device") await this.checkParent(identity, undefined);
    const r = await this.store.putHubDevice(this.hubName, { identity, twin: newTwin(now), rowVersion: 0 }, "absent");
    if (!r.ok) {
      throw this.kind === "module"
        ? new ProvisioError("hubModuleExists", { id: deviceId.replace("/", "' on device '") })
        : new ProvisioError("hubDeviceExists", { id: deviceId });
    }
    if (identity.status === "disabled") this.events.deviceRevoked(deviceId);
    await this.#afterWrite?.(identity);
    return identity;
  }

  /** A parent newly named must be an IoT Edge device of this hub, named by its own scope. */
  private async checkParent(identity: DeviceIdentity, before: DeviceIdentity | undefined): Promise<void> {
    const parent = parentScopeOf(scopesOf(identity), identity.capabilities.iotEdge);
    if (parent === null) return;
    if (before && parent === parentScopeOf(scopesOf(before), before.capabilities.iotEdge)) return;
    const parentId = deviceOfScope(parent);
    const rec = parentId === undefined ? undefined : await this.store.getHubDevice(this.hubName, parentId);
    if (!rec?.identity.capabilities.iotEdge || scopesOf(rec.identity).deviceScope !== parent) {
      throw new ProvisioError("hubArgumentInvalid", {
        detail: `'${parent}' is not the scope of an IoT Edge device of this hub; a parent must be an IoT Edge device (use its deviceScope).`,
      });
    }
  }

  async delete(deviceId: string, ifMatch: string | undefined): Promise<void> {
    const existing = await this.get(deviceId);
    if (ifMatch && unquote(ifMatch) !== "*" && unquote(ifMatch) !== existing.identity.etag) {
      throw new ProvisioError("hubPreconditionFailed", { id: deviceId });
    }
    if (!(await this.store.deleteHubDevice(this.hubName, deviceId))) throw this.#notFound(deviceId);
    this.events.deviceRevoked(deviceId);
  }

  /** PATCH (merge) or PUT (replace) /twins/{id}; pushes desired changes to the device. */
  async updateTwin(deviceId: string, body: unknown, ifMatch: string | undefined, mode: "patch" | "replace") {
    return this.mutate(deviceId, (rec, now) => {
      if (!etagMatchesTwin(ifMatch, rec.twin)) throw new ProvisioError("hubPreconditionFailed", { id: deviceId });
      const { twin, desiredPatch } =
        mode === "patch" ? applyServicePatch(rec.twin, body, now) : applyServiceReplace(rec.twin, body, now);
      return { record: { ...rec, twin }, after: desiredPatch };
    }).then(({ record, after }) => {
      if (after) {
        this.events.desiredChanged(deviceId, desiredNotification(after, record.twin), record.twin.desired.version);
      }
      return record;
    });
  }

  /** A device's reported-properties PATCH; resolves to the new reported version. */
  async patchReported(deviceId: string, patch: unknown): Promise<number> {
    const { record } = await this.mutate(deviceId, (rec, now) => ({
      record: { ...rec, twin: applyReportedPatch(rec.twin, patch, now) },
      after: undefined,
    }));
    return record.twin.reported.version;
  }

  /** Connection state bookkeeping (iothub-api.md §6.2): cosmetic, so failures are ignored. */
  async setConnected(deviceId: string, connected: boolean): Promise<void> {
    await this.mutate(deviceId, (rec, now) => ({
      record: {
        ...rec,
        identity: {
          ...rec.identity,
          connectionState: connected ? "Connected" : "Disconnected",
          connectionStateUpdatedTime: now,
          lastActivityTime: now,
        },
      },
      after: undefined,
    })).catch(() => undefined);
  }

  private async mutate<A>(
    deviceId: string,
    change: (rec: HubDeviceRecord, now: string) => { record: HubDeviceRecord; after: A },
  ): Promise<{ record: HubDeviceRecord; after: A }> {
    for (let attempt = 1; ; attempt++) {
      const rec = await this.get(deviceId);
      let result: { record: HubDeviceRecord; after: A };
      try {
        result = change(rec, nowUtc());
      } catch (err) {
        throw asProvisioError(err, deviceId);
      }
      const r = await this.store.putHubDevice(this.hubName, result.record, rec.rowVersion);
      if (r.ok) return { record: { ...result.record, rowVersion: rec.rowVersion + 1 }, after: result.after };
      if (!r.ok && r.reason === "missing") throw this.#notFound(deviceId);
      if (attempt >= ATTEMPTS) throw new ProvisioError("hubPreconditionFailed", { id: deviceId });
    }
  }
}

const authChanged = (a: DeviceIdentity, b: DeviceIdentity): boolean =>
  JSON.stringify(a.authentication) !== JSON.stringify(b.authentication);
