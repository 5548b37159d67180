// Delivery feedback of a hub's cloud-to-device messages (iothub-api.md §7): records wait here
// until a back end's feedback receiver takes them, in batches, as IoT Hub sends them.
import type { FeedbackRecord } from "./c2d-queue.js";

/** Records kept while no receiver listens; the oldest go first. */
const KEPT = 1000;

export class FeedbackChannel {
  readonly #waiting: FeedbackRecord[] = [];
  readonly #receivers = new Set<(batch: FeedbackRecord[]) => void>();

  add(record: FeedbackRecord): void {
    this.#waiting.push(record);
    if (this.#waiting.length > KEPT) this.#waiting.shift();
    // A microtask later, so that records of one moment go out as one batch.
    queueMicrotask(() => this.#flush());
  }

  /** Delivers every waiting batch to `receiver` until the returned function is called. */
  listen(receiver: (batch: FeedbackRecord[]) => void): () => void {
    this.#receivers.add(receiver);
    this.#flush();
    return () => this.#receivers.delete(receiver);
  }

  #flush(): void {
    const receiver = this.#receivers.values().next().value;
    if (!receiver || this.#waiting.length === 0) return;
    receiver(this.#waiting.splice(0));
  }
}
