// HubClients for linked hubs, made from their connection strings and kept while the string is
// unchanged (a rotated key makes a new client). Built-in hubs are dialed at this server's
// HTTPS port; every other hub at its host name on 443.
import type { LinkedHub } from "../domain/instance.js";
import { type HubClient, type HubEndpoint, hubClientFromConnectionString } from "../hub-client/hub-client.js";
import type { HubCallObserver } from "../observability/metrics.js";

export type EndpointResolver = (hostName: string) => HubEndpoint | undefined;
/** A client that reaches a hub without the network (a built-in hub of this server), if any. */
export type LocalClientFactory = (hub: LinkedHub) => HubClient | undefined;

export class HubClientPool {
  readonly #clients = new Map<string, { connectionString: string; client: HubClient }>();

  constructor(
    private readonly endpointFor: EndpointResolver,
    private readonly local: LocalClientFactory = () => undefined,
    /** Hears of every call to a hub (metrics); none when not given. */
    private readonly observe?: HubCallObserver,
  ) {}

  clientFor(hub: LinkedHub): HubClient {
    const key = hub.name.toLowerCase();
    const cached = this.#clients.get(key);
    if (cached && cached.connectionString === hub.connectionString) return cached.client;
    cached?.client.close();
    const made = this.local(hub) ?? hubClientFromConnectionString(hub.connectionString, this.endpointFor(hub.name));
    const client = this.observe ? timed(made, this.observe) : made;
    this.#clients.set(key, { connectionString: hub.connectionString, client });
    return client;
  }

  closeAll(): void {
    for (const { client } of this.#clients.values()) client.close();
    this.#clients.clear();
  }
}

/** The same client, each call timed for `observe`. */
function timed(client: HubClient, observe: HubCallObserver): HubClient {
  const time = <T>(operation: string, call: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    const done = (ok: boolean) => observe(client.hostName, operation, ok, (performance.now() - started) / 1000);
    return call().then(
      (value) => {
        done(true);
        return value;
      },
      (err: unknown) => {
        done(false);
        throw err;
      },
    );
  };
  return {
    hostName: client.hostName,
    createOrUpdateDevice: (device) => time("createOrUpdateDevice", () => client.createOrUpdateDevice(device)),
    deleteDevice: (deviceId, ifMatch) => time("deleteDevice", () => client.deleteDevice(deviceId, ifMatch)),
    getTwin: (deviceId) => time("getTwin", () => client.getTwin(deviceId)),
    replaceTwin: (deviceId, twin, ifMatch) => time("replaceTwin", () => client.replaceTwin(deviceId, twin, ifMatch)),
    close: () => client.close(),
  };
}
