// Which store `provisio serve` runs on: SQLite in the data directory (one node), or a PostgreSQL
// database that several nodes share, with the pieces only a cluster has.
import { join } from "node:path";
import type { Logger } from "../observability/logger.js";
import { type RateLimit, RateLimiter } from "../security/rate-limit.js";
import { loadMasterKey, parseMasterKey, SecretBox } from "../security/secret-box.js";
import type { HubEventRelay, HubStore } from "./hub-store.js";
import { PgRateLimit } from "./postgres/pg-rate-limit.js";
import { openPostgresStore } from "./postgres/pg-store.js";
import { openSqliteStore } from "./sqlite/sqlite-store.js";
import type { ProvisioningStore } from "./store.js";

/** What nodes sharing one database share besides records. */
export interface Cluster {
  /** A sealed value whichever node asks first creates, and every other node reads. */
  sharedSecret(name: string, create: () => Promise<string>): Promise<string>;
  /** A sealed shared value as it is now, if any. */
  readSharedSecret(name: string): Promise<string | undefined>;
  /** Replaces a sealed shared value. */
  writeSharedSecret(name: string, value: string): Promise<void>;
  /** Runs `work` while no other node runs work of the same name (first-start bootstrap). */
  exclusively<R>(name: string, work: () => Promise<R>): Promise<R>;
}

export interface OpenedStore {
  store: ProvisioningStore;
  hubs: HubStore;
  /** The registration rate limit: per node alone, per provisioning service across a cluster. */
  rateLimit(perMinute: number): RateLimit;
  /** Present when several nodes may share the database. */
  cluster?: Cluster;
  /** Hub device events to and from the other nodes (cluster only). */
  hubEvents?: HubEventRelay;
}

// Sealed by the first node; a node with another master key cannot open it.
const KEY_CHECK = "master-key-check";

export async function openStore(
  config: { dataDir: string; databaseUrl: string | undefined; masterKey: string | undefined },
  log: Logger,
): Promise<OpenedStore> {
  if (!config.databaseUrl) {
    const store = openSqliteStore(
      join(config.dataDir, "provisio.db"),
      new SecretBox(loadMasterKey(config.dataDir, config.masterKey)),
    );
    return { store, hubs: store.hubs, rateLimit: (perMinute) => new RateLimiter(perMinute) };
  }
  if (!config.masterKey) {
    throw new Error(
      "A database URL needs PROVISIO_MASTER_KEY: every node sharing the database must seal secrets with the same key " +
        "(64 hex digits or base64 of 32 bytes, e.g. `openssl rand -hex 32`). It is never stored in the database.",
    );
  }
  const store = await openPostgresStore(config.databaseUrl, new SecretBox(parseMasterKey(config.masterKey)), {
    onListenerEvent: (event, err) =>
      event === "lost"
        ? log.warn({ err }, "lost the database connection that hears other nodes' changes; reconnecting")
        : log.info("hearing other nodes' changes again; caches re-read"),
  });
  try {
    await store.sharedSecret(KEY_CHECK, async () => "provisio");
  } catch (e) {
    await store.close();
    throw new Error(
      "PROVISIO_MASTER_KEY is not the key this database's secrets were sealed with: give this node the same key as the others.",
      { cause: e },
    );
  }
  return {
    store,
    hubs: store.hubs,
    rateLimit: (perMinute) => new PgRateLimit(store.pool, perMinute),
    cluster: store,
    hubEvents: store.hubs,
  };
}
