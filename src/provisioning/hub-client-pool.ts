// HubClients for linked hubs, made from their connection strings and kept while the string is
// unchanged (a rotated key makes a new client). Built-in hubs are dialed at this server's
// HTTPS port; every other hub at its host name on 443.
import type { LinkedHub } from "../domain/instance.js";
import { type HubClient, type HubEndpoint, hubClientFromConnectionString } from "../hub-client/hub-client.js";

export type EndpointResolver = (hostName: string) => HubEndpoint | undefined;
/** A client that reaches a hub without the network (a built-in hub of this server), if any. */
export type LocalClientFactory = (hub: LinkedHub) => HubClient | undefined;

export class HubClientPool {
  readonly #clients = new Map<string, { connectionString: string; client: HubClient }>();

  constructor(
    private readonly endpointFor: EndpointResolver,
    private readonly local: LocalClientFactory = () => undefined,
  ) {}

  clientFor(hub: LinkedHub): HubClient {
    const key = hub.name.toLowerCase();
    const cached = this.#clients.get(key);
    if (cached && cached.connectionString === hub.connectionString) return cached.client;
    cached?.client.close();
    const client = this.local(hub) ?? hubClientFromConnectionString(hub.connectionString, this.endpointFor(hub.name));
    this.#clients.set(key, { connectionString: hub.connectionString, client });
    return client;
  }

  closeAll(): void {
    for (const { client } of this.#clients.values()) client.close();
    this.#clients.clear();
  }
}
