// Lowest latency (`geoLatency`), behaviors.md §4.3. Latency is estimated by location rules rather than RTT tables:
// the device's location is that of the first rule matching its source address, and candidate hubs in that location
// form the lowest-latency set. No estimate (no rule matches, or no hub is in that location) ties every candidate.
// Ties are broken with the weighted hash (§4.2), so the fallback is exactly `hashed` over the candidates.

import { weightedHash } from "./hashed.js";
import { normalizeLocation } from "./location-rules.js";

export interface LocatedHub {
  name: string;
  /** ARM region of the hub; compared case- and space-insensitively ("West US" = "westus"). */
  location: string;
  allocationWeight: number;
}

/**
 * The candidate hub (its `name`) nearest to `sourceAddress`; undefined only for an empty list.
 * `locate` maps a source address to a location, typically `compileLocationRules(rules)`.
 */
export function geoLatency(
  registrationId: string,
  sourceAddress: string,
  hubs: readonly LocatedHub[],
  locate: (address: string) => string | undefined,
): string | undefined {
  if (hubs.length <= 1) return hubs[0]?.name;
  const located = locate(sourceAddress);
  if (located === undefined) return weightedHash(registrationId, hubs);
  const location = normalizeLocation(located);
  // Count first so the common cases (no hub or a single hub in the region) allocate nothing.
  let matches = 0;
  let lastMatch: LocatedHub | undefined;
  for (const hub of hubs) {
    if (sameLocation(hub.location, location)) {
      matches++;
      lastMatch = hub;
    }
  }
  if (matches === 0) return weightedHash(registrationId, hubs);
  if (matches === 1) return (lastMatch as LocatedHub).name;
  return weightedHash(
    registrationId,
    hubs.filter((hub) => sameLocation(hub.location, location)),
  );
}

/** `hubLocation` may be stored un-normalised; `normalized` already is. Avoids re-normalising the usual stored form. */
function sameLocation(hubLocation: string, normalized: string): boolean {
  return hubLocation === normalized || normalizeLocation(hubLocation) === normalized;
}
