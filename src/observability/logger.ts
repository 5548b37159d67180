// Structured logs (pino), JSON lines on stdout; the level is a setting (server/config.ts).
import { type Logger, pino } from "pino";

export type { Logger };

export const createLogger = (level: string): Logger => pino({ level, base: { service: "provisio" } });
