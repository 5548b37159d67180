// Who may reach each provisioning service (issue "Network access, TLS and identity"): the
// instance's IP filter rules and public network access, compiled once per instance version
// (domain/ip-filter.ts), asked on every device request and service API request. A rule change is
// a new instance version, announced to every node like any instance change.

import type { Instance } from "../domain/instance.js";
import {
  compileNetworkFilter,
  DEFAULT_PRIVATE_NETWORKS,
  type NetworkFilter,
  type NetworkVerdict,
} from "../domain/ip-filter.js";

export class NetworkFilters {
  readonly #compiled = new Map<string, { etag: string; filter: NetworkFilter }>();

  constructor(private readonly privateNetworks: readonly string[] = DEFAULT_PRIVATE_NETWORKS) {}

  check(instance: Instance, address: string, api: "serviceApi" | "deviceApi"): NetworkVerdict {
    let entry = this.#compiled.get(instance.idScope);
    if (entry?.etag !== instance.etag) {
      entry = {
        etag: instance.etag,
        filter: compileNetworkFilter(
          {
            publicNetworkAccess: instance.publicNetworkAccess ?? "Enabled",
            ipFilterRules: instance.ipFilterRules ?? [],
          },
          this.privateNetworks,
        ),
      };
      this.#compiled.set(instance.idScope, entry);
    }
    return entry.filter(address, api);
  }
}
