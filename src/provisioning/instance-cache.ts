// An in-memory index of instances by scope and service host name, over the InstanceStore.
// Every request resolves its instance here, so it must not cost a query. It follows the store's
// instance announcements (store-changes.ts): the change carries the new record, so the index is
// current before the write that made it resolves.
import type { IdScope } from "../domain/ids.js";
import type { Instance } from "../domain/instance.js";
import type { InstanceStore } from "../store/store.js";
import type { StoreChanges } from "../store/store-changes.js";

export class InstanceCache {
  #byScope = new Map<string, Instance>();
  #byHost = new Map<string, Instance>();
  #primary: Instance | undefined;

  constructor(
    private readonly store: InstanceStore,
    changes: StoreChanges,
  ) {
    changes.subscribe((change) => {
      if (change.kind === "resync") return this.reload();
      if (change.kind !== "instance") return;
      const all = new Map(this.#byScope);
      if (change.instance) all.set(change.idScope, change.instance);
      else all.delete(change.idScope);
      this.index([...all.values()]);
    });
  }

  /** Reads every instance from the store (at start, and whenever another node may have written). */
  async reload(): Promise<void> {
    this.index(await this.store.listInstances());
  }

  private index(all: Instance[]): void {
    all.sort((a, b) => a.createdDateTimeUtc.localeCompare(b.createdDateTimeUtc));
    this.#byScope = new Map(all.map((i) => [i.idScope, i]));
    this.#byHost = new Map(all.map((i) => [i.hostName.toLowerCase(), i]));
    this.#primary = all[0];
  }

  byScope(idScope: string): Instance | undefined {
    return this.#byScope.get(idScope);
  }

  byName(name: string): Instance | undefined {
    const n = name.toLowerCase();
    for (const i of this.#byScope.values()) if (i.name.toLowerCase() === n) return i;
    return undefined;
  }

  /**
   * The instance answering for a host name. A host no instance claims (an IP address, an
   * alias) reaches the primary instance: the first one created.
   */
  byHost(host: string): Instance | undefined {
    return this.#byHost.get(host.toLowerCase()) ?? this.#primary;
  }

  primary(): Instance | undefined {
    return this.#primary;
  }

  all(): Instance[] {
    return [...this.#byScope.values()];
  }

  isPrimary(idScope: IdScope): boolean {
    return this.#primary?.idScope === idScope;
  }
}
