// The Event Hubs-compatible view of a built-in hub's telemetry (IoT Hub's built-in "events"
// endpoint): every message lands in one of PARTITION_COUNT partitions, chosen by its device, with
// a sequence number and an offset of its own there, and is kept for readers until RETAINED newer
// ones push it out. In memory, per node. Pure but for the clock the messages carry.
import { createHash } from "node:crypto";
import type { TelemetryMessage } from "./telemetry-log.js";

/** IoT Hub's default partition count for its built-in endpoint. */
export const PARTITION_COUNT = 4;
/** Events kept per partition. */
export const RETAINED = 10_000;

export interface StoredEvent {
  sequenceNumber: number;
  /** Event Hubs offsets are strings; here the sequence number's digits. */
  offset: string;
  enqueuedTime: Date;
  message: TelemetryMessage;
}

/** Where a reader starts: its filter's annotation, comparison and value. */
export type StartPosition =
  | { kind: "offset"; value: string; inclusive: boolean }
  | { kind: "sequenceNumber"; value: number; inclusive: boolean }
  | { kind: "enqueuedTime"; value: number }
  | { kind: "latest" };

interface Partition {
  events: StoredEvent[];
  nextSequence: number;
  readers: Set<(e: StoredEvent) => void>;
}

/** A reader holding a partition of a consumer group, with the epoch (owner level) it gave. */
interface Owner {
  epoch: number | undefined;
  kick(why: string): void;
}

/** A device's partition: stable, as IoT Hub's hashing of the device id is. */
export const partitionOf = (deviceId: string): number =>
  createHash("sha256").update(deviceId).digest().readUInt32BE(0) % PARTITION_COUNT;

export class EventHubPartitions {
  readonly createdAt = new Date();
  readonly #partitions: Partition[] = Array.from({ length: PARTITION_COUNT }, () => ({
    events: [],
    nextSequence: 0,
    readers: new Set(),
  }));

  /** Readers by consumer group and partition, for Event Hubs' epoch rule. */
  readonly #owners = new Map<string, Set<Owner>>();

  /**
   * Event Hubs' epoch (owner level) rule: a reader with a higher epoch than the partition's readers
   * in its consumer group takes the partition and they are told why; one with a lower epoch, or
   * none while an epoch reader holds it, is refused. Returns the release, or why it is refused.
   */
  claim(
    consumerGroup: string,
    id: string,
    epoch: number | undefined,
    kick: (why: string) => void,
  ): (() => void) | { refused: string } {
    const key = `${consumerGroup.toLowerCase()}\n${id}`;
    const owners = this.#owners.get(key) ?? new Set<Owner>();
    this.#owners.set(key, owners);
    const held = [...owners].map((o) => o.epoch).filter((e): e is number => e !== undefined);
    const top = held.length > 0 ? Math.max(...held) : undefined;
    if (top !== undefined && (epoch === undefined || epoch < top)) {
      return { refused: `a reader with epoch ${top} holds partition ${id} of consumer group '${consumerGroup}'` };
    }
    if (epoch !== undefined) {
      for (const o of [...owners]) {
        if (o.epoch === undefined || o.epoch < epoch) {
          owners.delete(o);
          o.kick(`a reader with epoch ${epoch} took partition ${id} of consumer group '${consumerGroup}'`);
        }
      }
    }
    const me: Owner = { epoch, kick };
    owners.add(me);
    return () => owners.delete(me);
  }

  get ids(): string[] {
    return this.#partitions.map((_, i) => String(i));
  }

  partition(id: string): Partition | undefined {
    return /^\d+$/.test(id) ? this.#partitions[Number(id)] : undefined;
  }

  append(message: TelemetryMessage): void {
    const p = this.#partitions[partitionOf(message.deviceId)] as Partition;
    const event: StoredEvent = {
      sequenceNumber: p.nextSequence,
      offset: String(p.nextSequence),
      enqueuedTime: new Date(message.enqueuedTimeUtc),
      message,
    };
    p.nextSequence++;
    p.events.push(event);
    if (p.events.length > RETAINED) p.events.splice(0, p.events.length - RETAINED);
    for (const reader of p.readers) reader(event);
  }

  /** The events a reader starting at `from` gets now; it hears of later ones through `listen`. */
  since(id: string, from: StartPosition): StoredEvent[] {
    const events = this.partition(id)?.events ?? [];
    switch (from.kind) {
      case "latest":
        return [];
      case "offset":
      case "sequenceNumber": {
        const n = Number(from.value);
        return events.filter((e) => (from.inclusive ? e.sequenceNumber >= n : e.sequenceNumber > n));
      }
      case "enqueuedTime":
        return events.filter((e) => e.enqueuedTime.getTime() > from.value);
    }
  }

  listen(id: string, reader: (e: StoredEvent) => void): () => void {
    const p = this.partition(id);
    p?.readers.add(reader);
    return () => p?.readers.delete(reader);
  }

  /** What `getPartitionProperties` reports. */
  info(id: string): { begin: number; last: number; lastOffset: string; lastTime: Date; empty: boolean } {
    const events = this.partition(id)?.events ?? [];
    const first = events[0];
    const last = events[events.length - 1];
    return {
      begin: first?.sequenceNumber ?? 0,
      last: last?.sequenceNumber ?? -1,
      lastOffset: last?.offset ?? "-1",
      lastTime: last?.enqueuedTime ?? new Date(0),
      empty: events.length === 0,
    };
  }
}

/**
 * The reader's start from its `apache.org:selector-filter:string` source filter, as the Event
 * Hubs SDKs write it (`amqp.annotation.x-opt-offset > '-1'`, `… >= '5'`, `@latest`,
 * `x-opt-sequence-number`, `x-opt-enqueued-time` in milliseconds). Pure.
 */
export function parseStartFilter(filter: string | undefined): StartPosition | { refused: string } {
  if (filter === undefined) return { kind: "latest" };
  const m = /^amqp\.annotation\.x-opt-(offset|sequence-number|enqueued-time)\s*(>=|>)\s*'([^']*)'$/.exec(filter.trim());
  if (!m)
    return {
      refused: `the selector filter '${filter}' is not one of x-opt-offset, x-opt-sequence-number or x-opt-enqueued-time compared with > or >=`,
    };
  const [, annotation, op, value = ""] = m;
  const inclusive = op === ">=";
  if (annotation === "offset") {
    if (value === "@latest") return { kind: "latest" };
    if (!/^-?\d+$/.test(value)) return { refused: `'${value}' is not an offset of this hub` };
    return { kind: "offset", value, inclusive };
  }
  if (!/^-?\d+$/.test(value)) return { refused: `'${value}' is not a number` };
  return annotation === "sequence-number"
    ? { kind: "sequenceNumber", value: Number(value), inclusive }
    : { kind: "enqueuedTime", value: Number(value) };
}
