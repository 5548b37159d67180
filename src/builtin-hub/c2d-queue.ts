// Cloud-to-device messages of one hub (IoT Hub's C2D queue, iothub-api.md §7): per device at
// most 50 waiting, each delivered under a lock (completed, rejected or abandoned by the device;
// back in the queue when the lock runs out), expired at its expiry time, dead after 10
// deliveries, and, when the sender asked (`iothub-ack`), a feedback record of how it ended.
// In memory: a restart forgets waiting messages. Pure but for the clock it is given.
import { randomUUID } from "node:crypto";

/** IoT Hub's bounds: waiting messages per device, deliveries before a message dies, the lock. */
export const MAX_QUEUED_PER_DEVICE = 50;
export const MAX_DELIVERY_COUNT = 10;
export const LOCK_MS = 60_000;
/** A message without an expiry lives this long (IoT Hub's default TTL, 1 hour). */
export const DEFAULT_TTL_MS = 3600_000;

export type Ack = "none" | "positive" | "negative" | "full";
export type FeedbackStatus = "Success" | "Expired" | "DeliveryCountExceeded" | "Rejected";

export interface C2dMessage {
  messageId: string;
  correlationId?: string;
  userId?: string;
  to: string;
  ack: Ack;
  /** ISO-8601. */
  enqueuedTime: string;
  expiryTime: string;
  /** Application properties, as strings. */
  properties: Record<string, string>;
  contentType?: string;
  contentEncoding?: string;
  body: Buffer;
}

/** A message handed to a device: its lock token and how often it was handed out. */
export interface Delivery {
  message: C2dMessage;
  lockToken: string;
  deliveryCount: number;
}

export interface FeedbackRecord {
  originalMessageId: string;
  description: string;
  deviceGenerationId: string;
  deviceId: string;
  enqueuedTimeUtc: string;
  statusCode: FeedbackStatus;
}

interface Entry {
  message: C2dMessage;
  deliveryCount: number;
  lock?: { token: string; until: number };
}

const wantsFeedback = (ack: Ack, status: FeedbackStatus): boolean =>
  ack === "full" || (ack === "positive" && status === "Success") || (ack === "negative" && status !== "Success");

export class C2dQueues {
  readonly #byDevice = new Map<string, Entry[]>();

  constructor(
    /** Hears each feedback record the senders asked for. */
    private readonly onFeedback: (r: FeedbackRecord) => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** Queues a message; false when the device already has MAX_QUEUED_PER_DEVICE waiting. */
  enqueue(
    deviceId: string,
    message: Omit<C2dMessage, "enqueuedTime" | "expiryTime"> & { expiryTime?: string },
  ): boolean {
    const list = this.#live(deviceId);
    if (list.length >= MAX_QUEUED_PER_DEVICE) return false;
    const now = this.now();
    list.push({
      message: {
        ...message,
        enqueuedTime: new Date(now).toISOString(),
        expiryTime: message.expiryTime ?? new Date(now + DEFAULT_TTL_MS).toISOString(),
      },
      deliveryCount: 0,
    });
    this.#byDevice.set(deviceId, list);
    return true;
  }

  /** How many messages wait for the device (locked ones included). */
  count(deviceId: string): number {
    return this.#live(deviceId).length;
  }

  /** The next message not under a lock, now locked for the device; undefined when none. */
  receive(deviceId: string): Delivery | undefined {
    const now = this.now();
    for (const entry of this.#live(deviceId)) {
      if (entry.lock && entry.lock.until > now) continue;
      entry.deliveryCount++;
      if (entry.deliveryCount > MAX_DELIVERY_COUNT) {
        this.#end(deviceId, entry, "DeliveryCountExceeded");
        return this.receive(deviceId);
      }
      entry.lock = { token: randomUUID(), until: now + LOCK_MS };
      return { message: entry.message, lockToken: entry.lock.token, deliveryCount: entry.deliveryCount };
    }
    return undefined;
  }

  /** The device took the message: it leaves the queue. False when the lock token is unknown or ran out. */
  complete(deviceId: string, lockToken: string): boolean {
    return this.#settle(deviceId, lockToken, (entry) => this.#end(deviceId, entry, "Success"));
  }

  /** The device refused the message: it dies. */
  reject(deviceId: string, lockToken: string): boolean {
    return this.#settle(deviceId, lockToken, (entry) => this.#end(deviceId, entry, "Rejected"));
  }

  /** The device gives the message back for a later delivery. */
  abandon(deviceId: string, lockToken: string): boolean {
    return this.#settle(deviceId, lockToken, (entry) => {
      entry.lock = undefined;
    });
  }

  /** Every message of a device goes (the device was deleted). */
  purge(deviceId: string): number {
    const n = this.#byDevice.get(deviceId)?.length ?? 0;
    this.#byDevice.delete(deviceId);
    return n;
  }

  #settle(deviceId: string, lockToken: string, then: (e: Entry) => void): boolean {
    const entry = this.#live(deviceId).find((e) => e.lock?.token === lockToken && e.lock.until > this.now());
    if (!entry) return false;
    then(entry);
    return true;
  }

  /** The device's queue without the messages that expired (each ending with its feedback). */
  #live(deviceId: string): Entry[] {
    const list = this.#byDevice.get(deviceId) ?? [];
    const now = this.now();
    for (const entry of [...list])
      if (Date.parse(entry.message.expiryTime) <= now) this.#end(deviceId, entry, "Expired");
    return this.#byDevice.get(deviceId) ?? [];
  }

  #end(deviceId: string, entry: Entry, status: FeedbackStatus): void {
    const list = this.#byDevice.get(deviceId) ?? [];
    const i = list.indexOf(entry);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.#byDevice.delete(deviceId);
    if (!wantsFeedback(entry.message.ack, status)) return;
    this.onFeedback({
      originalMessageId: entry.message.messageId,
      description: status,
      deviceGenerationId: "",
      deviceId,
      enqueuedTimeUtc: new Date(this.now()).toISOString(),
      statusCode: status,
    });
  }
}
