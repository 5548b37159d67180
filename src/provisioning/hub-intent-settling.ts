// Settling hub intents whose registration ended without settling them (issue "Reliability under
// faults" 2): the node carrying it crashed or was killed between its hub writes and its record, a
// hub refused to let an old identity go, or a failed hub write may have landed late. Any node
// runs this; intents are claimed in the store, so two nodes never settle the same one. The rule
// is domain/hub-intent.ts's: a hub keeps an identity the registration touched only if its record
// points at it.
import { settleHubIntent } from "../domain/hub-intent.js";
import type { Logger } from "../observability/logger.js";
import type { DevicePathStore, InstanceStore } from "../store/store.js";
import type { HubClientPool } from "./hub-client-pool.js";

const BATCH = 50;

export interface SettlingParts {
  store: Pick<DevicePathStore, "claimHubIntents" | "getRegistration" | "deleteHubIntent" | "putHubIntent"> &
    Pick<InstanceStore, "listLinkedHubs">;
  hubs: HubClientPool;
  node: string;
  leaseMs: number;
  log: Logger;
}

export class HubIntentSettling {
  #running: Promise<number> | undefined;

  constructor(private readonly parts: SettlingParts) {}

  /** Settles what is due now; resolves to how many intents were settled. One pass at a time. */
  settleDue(): Promise<number> {
    this.#running ??= this.#pass().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #pass(): Promise<number> {
    const { store, hubs, node, leaseMs, log } = this.parts;
    const now = Date.now();
    const until = new Date(now + leaseMs).toISOString();
    const claimed = await store.claimHubIntents(node, until, new Date(now).toISOString(), BATCH);
    let settled = 0;
    for (const { idScope, intent } of claimed) {
      try {
        const record = await store.getRegistration(idScope, intent.registrationId);
        const linked = await store.listLinkedHubs(idScope);
        for (const placement of settleHubIntent(intent, record?.state)) {
          const hub = linked.find((h) => h.name.toLowerCase() === placement.hubName.toLowerCase());
          if (!hub) {
            log.warn(
              { idScope, registrationId: intent.registrationId, ...placement },
              "a device identity no registration points at is on a hub that is no longer linked; delete it there",
            );
            continue;
          }
          const removed = await hubs.clientFor(hub).deleteDevice(placement.deviceId);
          log.info(
            { idScope, registrationId: intent.registrationId, operationId: intent.operationId, removed, ...placement },
            "settled an unfinished registration: its record does not point at this identity, so the hub no longer has it",
          );
        }
        await store.deleteHubIntent(idScope, intent.operationId);
        settled++;
      } catch (err) {
        // Released, not carried: this node's renewals must not keep it; any node tries again later.
        log.warn(
          { err, idScope, operationId: intent.operationId },
          "could not settle a hub intent yet; retrying later",
        );
        await store.putHubIntent(idScope, { ...intent, carrier: { node: "", until } }).catch(() => undefined);
      }
    }
    return settled;
  }
}
