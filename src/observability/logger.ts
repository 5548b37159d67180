// Structured logs (pino). Level from PROVISIO_LOG_LEVEL, default info.
import { type Logger, pino } from "pino";

export type { Logger };

export const createLogger = (level = process.env.PROVISIO_LOG_LEVEL ?? "info"): Logger =>
  pino({ level, base: { service: "provisio" } });
