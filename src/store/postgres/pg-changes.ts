// Store changes between the nodes of a cluster, through PostgreSQL's own LISTEN/NOTIFY: a node
// that commits a change notifies the channel; every node listens on a connection of its own and
// tells its caches. A dropped listening connection is reopened, and since notifications sent
// meanwhile are lost, the caches are told to re-read everything ("resync"). Hub device events
// (pg-hub-store.ts) travel on a channel of their own over the same connection.
import pg from "pg";
import type { StoreChange } from "../store-changes.js";
import type { Queryable } from "./pg-rows.js";

export const CHANGES_CHANNEL = "provisio_changes";

/** What travels on the channel: the sending node and the change without its record. */
interface WireChange {
  node: string;
  change: StoreChange;
}

export async function notifyChange(q: Queryable, node: string, change: StoreChange): Promise<void> {
  // Records stay off the wire (8000-byte payload limit, and secrets): receivers re-read them.
  const bare: StoreChange = change.kind === "instance" ? { kind: "instance", idScope: change.idScope } : change;
  const wire: WireChange = { node, change: bare };
  await q.query("SELECT pg_notify($1, $2)", [CHANGES_CHANNEL, JSON.stringify(wire)]);
}

/** Parses a notification; anything else on the channel is ignored. */
export function parseWireChange(payload: string | undefined): WireChange | undefined {
  if (!payload) return undefined;
  try {
    const w = JSON.parse(payload) as Partial<WireChange>;
    const c = w.change as Partial<StoreChange> | undefined;
    if (typeof w.node !== "string" || !c || typeof c.kind !== "string") return undefined;
    if (c.kind !== "resync" && typeof (c as { idScope?: unknown }).idScope !== "string") return undefined;
    return w as WireChange;
  } catch {
    return undefined;
  }
}

/** A notification channel and what to do with each payload on it. */
export type ChannelHandlers = Record<string, (payload: string) => void | Promise<void>>;

/**
 * One connection of this node that LISTENs on the cluster's channels. After it was lost and is
 * back, `recovered` runs: whatever was sent meanwhile is lost, so caches must re-read.
 */
export class PgListener {
  #client: pg.Client | undefined;
  #heard: Promise<void> = Promise.resolve();
  #stopped = false;
  #retry: NodeJS.Timeout | undefined;

  constructor(
    private readonly url: string,
    private readonly handlers: ChannelHandlers,
    private readonly recovered: () => void | Promise<void>,
    private readonly onEvent: (event: "lost" | "recovered", err?: unknown) => void = () => undefined,
  ) {}

  /** Connects and listens; rejects if the first connection fails. */
  async start(): Promise<void> {
    await this.#connect();
  }

  async #connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url });
    client.on("notification", (msg) => {
      const handle = this.handlers[msg.channel];
      const payload = msg.payload;
      if (!handle || !payload) return;
      // One at a time, in the order the database sent them: a change whose record must be read
      // first is never overtaken by a later one.
      this.#heard = this.#heard.then(() => handle(payload)).catch(() => undefined);
    });
    const lost = (err?: unknown) => {
      if (this.#client !== client || this.#stopped) return;
      this.#client = undefined;
      client.end().catch(() => undefined);
      this.onEvent("lost", err);
      this.#schedule();
    };
    client.on("error", lost);
    client.on("end", () => lost());
    try {
      await client.connect();
      for (const channel of Object.keys(this.handlers)) await client.query(`LISTEN ${channel}`);
    } catch (e) {
      await client.end().catch(() => undefined);
      throw e;
    }
    this.#client = client;
  }

  #schedule(): void {
    this.#retry = setTimeout(() => {
      this.#connect().then(
        async () => {
          this.onEvent("recovered");
          await this.recovered();
        },
        () => this.#schedule(),
      );
    }, 1_000);
    this.#retry.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retry);
    const c = this.#client;
    this.#client = undefined;
    await c?.end().catch(() => undefined);
  }
}
