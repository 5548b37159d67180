// The live device sessions of one hub: one per device (a new connection replaces the old,
// iothub-api.md §6.2), desired-property pushes, and revocation when a device is disabled,
// deleted or re-keyed.
import type { JsonObject } from "../domain/json.js";
import type { MethodResult } from "./direct-methods.js";
import type { RegistryEvents } from "./registry.js";

export interface LiveSession {
  readonly deviceId: string;
  /** Whether the device subscribed to direct methods. */
  readonly listensForMethods: boolean;
  pushDesired(notification: JsonObject, version: number): void;
  /** Cloud-to-device messages wait for the device: deliver them if it listens. */
  deliverCloudToDevice(): void;
  /** A direct method call; its answer, or a 504 after `timeoutSeconds`. */
  invokeMethod(name: string, payload: string, timeoutSeconds: number): Promise<MethodResult>;
  /** Ends the session; `replaced` when a newer connection of the same device takes over. */
  close(reason: string, replaced?: boolean): void;
}

export class DeviceSessions implements RegistryEvents {
  readonly #live = new Map<string, LiveSession>();
  /** Method calls waiting for their device to connect and subscribe (connectTimeoutInSeconds). */
  readonly #waiting = new Map<string, Set<(s: LiveSession) => void>>();

  /** Register a session; an older one of the same device is closed. */
  add(session: LiveSession): void {
    const old = this.#live.get(session.deviceId);
    this.#live.set(session.deviceId, session);
    if (old && old !== session) old.close("the device connected again", true);
  }

  remove(session: LiveSession): void {
    if (this.#live.get(session.deviceId) === session) this.#live.delete(session.deviceId);
  }

  get(deviceId: string): LiveSession | undefined {
    return this.#live.get(deviceId);
  }

  get size(): number {
    return this.#live.size;
  }

  /** The device's session once it listens for methods, waiting up to `ms`; undefined after. */
  methodsListener(deviceId: string, ms: number): Promise<LiveSession | undefined> {
    const now = this.#live.get(deviceId);
    if (now?.listensForMethods) return Promise.resolve(now);
    if (ms <= 0) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const waiters = this.#waiting.get(deviceId) ?? new Set();
      this.#waiting.set(deviceId, waiters);
      const done = (s: LiveSession | undefined) => {
        clearTimeout(timer);
        waiters.delete(done);
        if (waiters.size === 0) this.#waiting.delete(deviceId);
        resolve(s);
      };
      const timer = setTimeout(() => done(undefined), ms);
      waiters.add(done);
    });
  }

  /** A cloud-to-device message was queued for the device: its session, if any, delivers it. */
  cloudToDeviceWaiting(deviceId: string): void {
    this.#live.get(deviceId)?.deliverCloudToDevice();
  }

  /** A session subscribed to methods: calls waiting for its device go to it. */
  listeningForMethods(session: LiveSession): void {
    for (const wake of [...(this.#waiting.get(session.deviceId) ?? [])]) wake(session);
  }

  desiredChanged(deviceId: string, notification: JsonObject, version: number): void {
    this.#live.get(deviceId)?.pushDesired(notification, version);
  }

  deviceRevoked(deviceId: string): void {
    this.#live.get(deviceId)?.close("the device identity changed, was disabled or was deleted");
  }

  closeAll(reason: string): void {
    for (const s of [...this.#live.values()]) s.close(reason);
  }
}
