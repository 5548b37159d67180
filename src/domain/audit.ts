// The audit trail (issue 20 "Audit"): every change made through the service and management APIs,
// and every read of keys, with who made it, from where and how it ended. Pure: what is recorded
// and which requests count.

export interface AuditEvent {
  /** When the answer was sent (ISO 8601). */
  at: string;
  /** The provisioning service the request was about (its name, lower-cased). */
  service: string;
  caller: { kind: "policy" | "token"; name: string; displayName?: string };
  method: string;
  /** The request path without its query string. */
  path: string;
  status: number;
  /** The client's address as the listener saw it. */
  callerIp: string;
}

/** An event as read back, with its place in the trail (newer events have larger numbers). */
export interface StoredAuditEvent extends AuditEvent {
  seq: number;
}

export interface AuditQuery {
  service: string;
  /** At most this many, newest first. */
  top: number;
  /** Only events older than this one (paging). */
  beforeSeq?: number;
  since?: string;
  until?: string;
  /** Only this caller's (policy name or token subject). */
  caller?: string;
}

/**
 * Which requests are audited: everything but reads. GETs, queries and dry runs change nothing;
 * every other POST either changes something (bulk, verification) or reveals keys (listkeys,
 * attestationmechanism), which an audit should show too.
 */
export function isAudited(method: string, lowerSegments: readonly string[]): boolean {
  if (method === "GET" || method === "HEAD" || method === "OPTIONS") return false;
  const last = lowerSegments[lowerSegments.length - 1];
  return !(method === "POST" && (last === "query" || last === "dryrun"));
}
