// The live device sessions of one hub: one per device (a new connection replaces the old,
// iothub-api.md §6.2), desired-property pushes, and revocation when a device is disabled,
// deleted or re-keyed.
import type { JsonObject } from "../domain/json.js";
import type { RegistryEvents } from "./registry.js";

export interface LiveSession {
  readonly deviceId: string;
  pushDesired(notification: JsonObject, version: number): void;
  close(reason: string): void;
}

export class DeviceSessions implements RegistryEvents {
  readonly #live = new Map<string, LiveSession>();

  /** Register a session; an older one of the same device is closed. */
  add(session: LiveSession): void {
    const old = this.#live.get(session.deviceId);
    this.#live.set(session.deviceId, session);
    if (old && old !== session) old.close("the device connected again");
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
