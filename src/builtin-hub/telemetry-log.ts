// Telemetry the built-in hubs received: the last messages of each device are kept for
// inspection, and every message is announced to live watchers (`provisio hub monitor-events`).
import { EventEmitter } from "node:events";
import type { MessageProperties } from "./property-bag.js";

export interface TelemetryMessage {
  hub: string;
  deviceId: string;
  enqueuedTimeUtc: string;
  transport: "mqtt" | "mqtt-ws" | "amqp" | "amqp-ws" | "https";
  properties: MessageProperties;
  body: Buffer;
}

/** Messages kept per device. */
export const KEPT_PER_DEVICE = 100;

export class TelemetryLog {
  readonly #byDevice = new Map<string, TelemetryMessage[]>();
  readonly #emitter = new EventEmitter();

  constructor() {
    // Any number of monitors may watch.
    this.#emitter.setMaxListeners(0);
  }

  append(message: TelemetryMessage): void {
    const key = `${message.hub.toLowerCase()}/${message.deviceId}`;
    const list = this.#byDevice.get(key) ?? [];
    if (list.length === 0) this.#byDevice.set(key, list);
    list.push(message);
    if (list.length > KEPT_PER_DEVICE) list.splice(0, list.length - KEPT_PER_DEVICE);
    this.#emitter.emit("message", message);
  }

  /** The last messages of a device (oldest first), or of every device of the hub. */
  recent(hub: string, deviceId?: string): TelemetryMessage[] {
    if (deviceId !== undefined) return [...(this.#byDevice.get(`${hub.toLowerCase()}/${deviceId}`) ?? [])];
    const prefix = `${hub.toLowerCase()}/`;
    const all: TelemetryMessage[] = [];
    for (const [key, list] of this.#byDevice) if (key.startsWith(prefix)) all.push(...list);
    return all.sort((a, b) => a.enqueuedTimeUtc.localeCompare(b.enqueuedTimeUtc));
  }

  /** Calls `listener` for every new message until the returned function is called. */
  watch(listener: (m: TelemetryMessage) => void): () => void {
    this.#emitter.on("message", listener);
    return () => this.#emitter.off("message", listener);
  }
}

/** The JSON shape of a message on the monitoring endpoints. */
export function messageJson(m: TelemetryMessage): Record<string, unknown> {
  const text = m.body.toString("utf8");
  let payload: unknown = text;
  try {
    payload = JSON.parse(text);
  } catch {}
  return {
    hub: m.hub,
    deviceId: m.deviceId,
    enqueuedTimeUtc: m.enqueuedTimeUtc,
    transport: m.transport,
    systemProperties: m.properties.system,
    properties: m.properties.app,
    payload,
  };
}
