// DPS's resource logs (behaviors.md §11): one JSON line per device operation and per service
// operation, with the columns of DPS's AzureDiagnostics rows, written with the other logs and,
// with --diagnostic-log FILE, to a file of their own.
import { randomUUID } from "node:crypto";
import { createWriteStream, type WriteStream } from "node:fs";
import type { Logger } from "./logger.js";

export interface DiagnosticEntry {
  Category: "DeviceOperations" | "ServiceOperations";
  OperationName: string;
  /** Success, ClientError (4xx) or Failure (5xx). */
  ResultType: "Success" | "ClientError" | "Failure";
  /** The HTTP status (or its equivalent on MQTT and AMQP). */
  ResultSignature: string;
  /** The error's message; empty on success. */
  ResultDescription: string;
  DurationMs: string;
  /** The caller's address, its last part masked as DPS does (`24.18.226.XXX`). */
  CallerIpAddress: string;
  CorrelationId: string;
  Level: "Information" | "Warning" | "Error";
  /** The provisioning service, upper-case as DPS writes Resource. */
  Resource: string;
  TimeGenerated: string;
  properties: { id: string; type: string; protocol?: string };
}

/** What a diagnostic entry is made from. */
export interface DiagnosticEvent {
  category: DiagnosticEntry["Category"];
  operation: string;
  status: number;
  description?: string;
  startedAt: number;
  callerIp: string;
  correlationId?: string;
  service: string;
  id: string;
  type: string;
  protocol?: string;
}

/** `24.18.226.17` → `24.18.226.XXX`; IPv6 keeps its first four groups. */
export function maskIp(ip: string): string {
  const v4 = /^(?:::ffff:)?(\d+\.\d+\.\d+)\.\d+$/.exec(ip);
  if (v4) return `${v4[1]}.XXX`;
  if (ip.includes(":")) return `${ip.split(":").slice(0, 4).join(":")}:XXXX`;
  return ip === "" ? "" : "XXX";
}

export function diagnosticEntry(e: DiagnosticEvent, now = Date.now()): DiagnosticEntry {
  const resultType = e.status < 400 ? "Success" : e.status < 500 ? "ClientError" : "Failure";
  return {
    Category: e.category,
    OperationName: e.operation,
    ResultType: resultType,
    ResultSignature: String(e.status),
    ResultDescription: e.description ?? "",
    DurationMs: String(Math.max(0, now - e.startedAt)),
    CallerIpAddress: maskIp(e.callerIp),
    CorrelationId: e.correlationId ?? randomUUID(),
    Level: resultType === "Success" ? "Information" : resultType === "ClientError" ? "Warning" : "Error",
    Resource: e.service.toUpperCase(),
    TimeGenerated: new Date(now).toISOString(),
    properties: { id: e.id, type: e.type, ...(e.protocol ? { protocol: e.protocol } : {}) },
  };
}

/** What the recent lines may be filtered by (all optional but the service). */
export interface DiagnosticFilter {
  /** The provisioning service's name: an instance sees only its own lines. */
  service: string;
  category?: string;
  /** A registration or enrollment id (case-insensitive). */
  id?: string;
  /** Success, ClientError or Failure. */
  result?: string;
  /** ISO-8601: lines generated at or after it. */
  since?: string;
}

export interface DiagnosticLog {
  write(event: DiagnosticEvent): void;
  /** The most recent lines this node wrote (at most RECENT_LINES), oldest first. */
  recent(filter: DiagnosticFilter): DiagnosticEntry[];
  close(): Promise<void>;
}

/** How many recent lines a node keeps for the API: a bounded ring, not a store. */
export const RECENT_LINES = 1000;

export const NO_DIAGNOSTICS: DiagnosticLog = { write() {}, recent: () => [], close: async () => {} };

/** A bounded ring of entries and the filter over it. Pure. */
export class RecentLines {
  readonly #lines: DiagnosticEntry[] = [];
  constructor(private readonly capacity = RECENT_LINES) {}

  push(entry: DiagnosticEntry): void {
    this.#lines.push(entry);
    if (this.#lines.length > this.capacity) this.#lines.shift();
  }

  matching(f: DiagnosticFilter): DiagnosticEntry[] {
    const resource = f.service.toUpperCase();
    const id = f.id?.toLowerCase();
    return this.#lines.filter(
      (e) =>
        e.Resource === resource &&
        (f.category === undefined || e.Category.toLowerCase() === f.category.toLowerCase()) &&
        (id === undefined || e.properties.id.toLowerCase() === id) &&
        (f.result === undefined || e.ResultType.toLowerCase() === f.result.toLowerCase()) &&
        (f.since === undefined || e.TimeGenerated >= f.since),
    );
  }
}

/**
 * Entries go to the log (info level, `diagnostic: true`), when given to `file` as JSON lines, and
 * the recent ones stay readable (GET /diagnostics on the service API).
 */
export function diagnosticLog(log: Logger, file?: string): DiagnosticLog {
  const stream: WriteStream | undefined = file ? createWriteStream(file, { flags: "a", mode: 0o600 }) : undefined;
  const toLog = log.isLevelEnabled("info");
  const recent = new RecentLines();
  return {
    write(event) {
      const entry = diagnosticEntry(event);
      recent.push(entry);
      if (toLog)
        log.info({ diagnostic: true, ...entry }, `${entry.Category} ${entry.OperationName} ${entry.ResultType}`);
      stream?.write(`${JSON.stringify(entry)}\n`);
    },
    recent: (filter) => recent.matching(filter),
    close: () => new Promise((resolve) => (stream ? stream.end(resolve) : resolve())),
  };
}
