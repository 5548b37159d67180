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

export interface DiagnosticLog {
  write(event: DiagnosticEvent): void;
  close(): Promise<void>;
}

export const NO_DIAGNOSTICS: DiagnosticLog = { write() {}, close: async () => {} };

/** Entries go to the log (info level, `diagnostic: true`) and, when given, to `file` as JSON lines. */
export function diagnosticLog(log: Logger, file?: string): DiagnosticLog {
  const stream: WriteStream | undefined = file ? createWriteStream(file, { flags: "a", mode: 0o600 }) : undefined;
  // Nothing to build when neither the log (below info) nor a file would take the line.
  if (!stream && !log.isLevelEnabled("info")) return NO_DIAGNOSTICS;
  return {
    write(event) {
      const entry = diagnosticEntry(event);
      log.info({ diagnostic: true, ...entry }, `${entry.Category} ${entry.OperationName} ${entry.ResultType}`);
      stream?.write(`${JSON.stringify(entry)}\n`);
    },
    close: () => new Promise((resolve) => (stream ? stream.end(resolve) : resolve())),
  };
}
