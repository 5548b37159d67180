// What every registration of a scope reads and rarely changes: its enrollment groups, linked hubs
// and CA certificates. Held in memory, dropped when the store announces a change to them
// (store-changes.ts), and re-read after a short time otherwise, so other nodes' changes arrive too.
import type { EnrollmentGroup } from "../domain/enrollment.js";
import type { IdScope } from "../domain/ids.js";
import type { CaCertificate, LinkedHub } from "../domain/instance.js";
import type { DevicePathStore } from "../store/store.js";
import type { StoreChanges } from "../store/store-changes.js";

/** Shared by every registration until the scope changes, and never mutated (attestation keys caches on it). */
export interface ScopeConfig {
  readonly groups: readonly EnrollmentGroup[];
  readonly linkedHubs: readonly LinkedHub[];
  /** The instance's CA store: trust anchors of X.509 groups. */
  readonly caCertificates: readonly CaCertificate[];
}

/** How long another node's change may go unseen. */
export const SCOPE_CACHE_TTL_MS = 5_000;

interface Entry {
  at: number;
  config: Promise<ScopeConfig>;
  /** The config once read, and its JSON, to tell a re-read that found no change. */
  settled?: { config: ScopeConfig; json: string };
}

export class ScopeCache {
  readonly #entries = new Map<string, Entry>();

  constructor(
    private readonly store: Pick<DevicePathStore, "readScope">,
    changes: StoreChanges,
    private readonly now: () => number = Date.now,
  ) {
    changes.subscribe((change) => {
      this.#entries.delete(change.idScope);
    });
  }

  get(idScope: IdScope): Promise<ScopeConfig> {
    const hit = this.#entries.get(idScope);
    if (hit && this.now() - hit.at < SCOPE_CACHE_TTL_MS) return hit.config;
    const previous = hit?.settled;
    const entry: Entry = {
      at: this.now(),
      config: this.load(idScope).then((fresh) => {
        const json = JSON.stringify(fresh);
        // Unchanged since the last read: hand out the same objects. The caches keyed on them stay
        // warm, and V8's optimised code, which has seen their shapes, is not thrown away every TTL.
        entry.settled = previous?.json === json ? previous : { config: fresh, json };
        return entry.settled.config;
      }),
    };
    this.#entries.set(idScope, entry);
    entry.config.catch(() => {
      if (this.#entries.get(idScope) === entry) this.#entries.delete(idScope);
    });
    return entry.config;
  }

  private load(idScope: IdScope): Promise<ScopeConfig> {
    return this.store.readScope(idScope);
  }
}
