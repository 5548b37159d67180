// Changes a store announces after it has committed them, so that what is cached from it (the
// instance cache, compiled scope views, the server certificate's names) follows every write, made
// through any API of this node — and, once several nodes share a database, of the others.
import type { IdScope } from "../domain/ids.js";
import type { Instance } from "../domain/instance.js";

export type StoreChange =
  /** An instance was created or updated (`instance` is the new record) or deleted (absent). */
  | { kind: "instance"; idScope: IdScope; instance?: Instance }
  /** Something a registration of the scope reads through its compiled view changed. */
  | { kind: "scope"; idScope: IdScope; what: "groups" | "linkedHubs" | "caCertificates" | "policies" }
  /**
   * Anything may have changed: announcements from other nodes may have been missed (the link to
   * the shared database dropped). Whatever is cached is read again.
   */
  | { kind: "resync" };

/** A listener may return a promise: the write that announced the change resolves after it settles. */
export type ChangeListener = (change: StoreChange) => void | Promise<void>;

export interface StoreChanges {
  /** Returns the unsubscribe function. */
  subscribe(listener: ChangeListener): () => void;
}

/** The in-process publisher a store owns. A failing listener is reported and never fails the write. */
export class ChangePublisher implements StoreChanges {
  readonly #listeners = new Set<ChangeListener>();

  constructor(private readonly onListenerError: (err: unknown, change: StoreChange) => void = () => undefined) {}

  subscribe(listener: ChangeListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async publish(change: StoreChange): Promise<void> {
    const pending: Promise<void>[] = [];
    for (const listener of this.#listeners) {
      try {
        const r = listener(change);
        if (r) pending.push(r.catch((err: unknown) => this.onListenerError(err, change)));
      } catch (err) {
        this.onListenerError(err, change);
      }
    }
    if (pending.length > 0) await Promise.all(pending);
  }
}
