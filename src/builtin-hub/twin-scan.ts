// Every twin of a hub that a query's WHERE matches, in device id order, a page of the registry at
// a time: what queries past their first page, COUNT() and jobs read.

import type { HubDeviceRecord } from "../domain/hub.js";
import { twinJson } from "./hub-wire.js";
import type { HubRegistry } from "./registry.js";
import { matchesQuery, type TwinQuery } from "./twin-query.js";

const SCAN_PAGE = 200;

export async function* matchingTwins(
  registry: Pick<HubRegistry, "list">,
  query: TwinQuery,
  after?: string,
  /** How a record reads as a twin: a device's (default) or a module's. */
  toTwin: (rec: HubDeviceRecord) => Record<string, unknown> = twinJson,
): AsyncGenerator<{ deviceId: string; twin: Record<string, unknown> }> {
  let from = after;
  for (;;) {
    const chunk = await registry.list({ limit: SCAN_PAGE, ...(from !== undefined ? { after: from } : {}) });
    for (const rec of chunk.items) {
      const twin = toTwin(rec);
      if (matchesQuery(query, twin)) yield { deviceId: rec.identity.deviceId, twin };
    }
    if (chunk.next === undefined) return;
    from = chunk.next;
  }
}
