// Structured logs (pino) on stdout: JSON lines for machines, or one readable line per entry for
// a person at a terminal (pino-pretty). The level and the format are settings (server/config.ts).
import { type Logger, pino } from "pino";
import pretty from "pino-pretty";

export type { Logger };

export type LogFormat = "json" | "pretty";

/** `auto`: pretty on a terminal, JSON lines anywhere else (a pipe, a file, a container's log). */
export const resolveLogFormat = (setting: LogFormat | "auto", isTty: boolean): LogFormat =>
  setting === "auto" ? (isTty ? "pretty" : "json") : setting;

export function createLogger(level: string, format: LogFormat = "json"): Logger {
  const base = { level, base: { service: "provisio" } };
  if (format === "json") return pino(base);
  // Synchronous, so that a line written just before exit is not lost.
  return pino(base, pretty({ sync: true, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname,service" }));
}
