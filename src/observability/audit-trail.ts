// Appends audited requests (domain/audit.ts) to the store once they are answered: who (the
// authenticated caller), what (method and path), how it ended (status), from where, when.
// Requests that never got as far as a caller (no or bad credentials) are in the log, not here.
import { isAudited } from "../domain/audit.js";
import type { ServiceRequest } from "../http/api-request.js";
import type { AuditStore } from "../store/store.js";
import type { Logger } from "./logger.js";

/** How long events are kept (a year), trimmed hourly. */
export const AUDIT_RETENTION_MS = 365 * 24 * 3600_000;

export class AuditTrail {
  constructor(
    private readonly store: AuditStore,
    private readonly log: Logger,
  ) {}

  /** Watches a service or management request about `service` (an instance name). */
  observe(r: ServiceRequest, service: string): void {
    const method = r.req.method ?? "GET";
    if (!isAudited(method, r.path.lower)) return;
    r.res.once("finish", () => {
      const caller = r.caller;
      if (!caller) return;
      const event = {
        at: new Date().toISOString(),
        service: service.toLowerCase(),
        caller: {
          kind: caller.kind,
          name: caller.name,
          ...(caller.displayName ? { displayName: caller.displayName } : {}),
        },
        method,
        path: `/${r.path.segments.join("/")}`,
        status: r.res.statusCode,
        callerIp: r.req.socket.remoteAddress ?? "",
      };
      this.store.appendAudit(event).catch((err: unknown) => {
        // The change itself stands; the log keeps what the trail could not.
        this.log.error({ err, audit: event }, "could not append to the audit trail");
      });
    });
  }

  /** Drops events older than the retention. */
  async trim(now = Date.now()): Promise<number> {
    return this.store.deleteAuditBefore(new Date(now - AUDIT_RETENTION_MS).toISOString());
  }
}
