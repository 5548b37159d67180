// `provisio serve` settings: flags, then PROVISIO_* environment variables, then defaults
// (design.md, "Running it").
export interface ServeConfig {
  dataDir: string;
  host: string;
  httpsPort: number;
  mqttPort: number;
  amqpPort: number;
  /** Address the listeners bind. */
  bind: string;
  /** How many built-in IoT hubs to run. */
  hubs: number;
  /** How long a register call waits for the result before answering "assigning" (ms). */
  registerWaitMs?: number;
  /** Registrations per minute per provisioning service; 0 or unset = unlimited. */
  registrationsPerMinute?: number;
  /** Custom allocation webhook: per-call timeout (ms) and number of retries (behaviors.md §4.5). */
  webhookTimeoutMs?: number;
  webhookRetries?: number;
  /** How the engine reaches built-in hubs: in-process (default) or over their REST API. */
  builtinHubClient?: "in-process" | "rest";
}

export const DEFAULTS: ServeConfig = {
  dataDir: "./provisio-data",
  host: "localhost",
  httpsPort: 8443,
  mqttPort: 8883,
  amqpPort: 5671,
  bind: "0.0.0.0",
  hubs: 1,
};

export function parsePort(text: string, what: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new Error(`${what} must be a port number 0-65535, not '${text}'.`);
  return n;
}

export function parseCount(text: string, what: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 0 || n > 50) throw new Error(`${what} must be a whole number 0-50, not '${text}'.`);
  return n;
}

/** A whole number ≥ 0 (milliseconds, a rate); `unit` names it in the error. */
export function parseWhole(text: string, what: string, unit: string): number {
  if (!/^\d{1,9}$/.test(text)) throw new Error(`${what} must be a whole number of ${unit}, not '${text}'.`);
  return Number(text);
}
