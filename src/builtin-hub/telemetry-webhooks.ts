// Telemetry out of the built-in hubs (issue "The built-in hub" point 6): beside the in-memory view
// and the server-sent event stream, each hub can post every device-to-cloud message to webhooks
// (PROVISIO_TELEMETRY_WEBHOOKS), the way IoT Hub routes messages to an endpoint: JSON, one
// message a request, in order per webhook, retried, with a bounded backlog that drops the oldest.
import type { Logger } from "../observability/logger.js";
import { messageJson, type TelemetryLog, type TelemetryMessage } from "./telemetry-log.js";

/** Messages waiting per webhook; past it the oldest are dropped (and counted). */
export const WEBHOOK_BACKLOG = 10_000;
/** Waits before the 2nd, 3rd and 4th try of one message. */
const RETRY_DELAYS_MS = [1_000, 5_000, 15_000];
const TIMEOUT_MS = 10_000;

export interface WebhookStats {
  hub: string;
  url: string;
  delivered: number;
  failed: number;
  dropped: number;
  backlog: number;
  lastError?: string;
}

/** One message as posted: messageJson, with IoT Hub's routing headers. Pure. */
export function webhookRequest(m: TelemetryMessage): { body: string; headers: Record<string, string> } {
  return {
    body: JSON.stringify(messageJson(m)),
    headers: {
      "content-type": "application/json",
      "iothub-connection-device-id": m.deviceId,
      "iothub-enqueuedtime": m.enqueuedTimeUtc,
      "iothub-hub": m.hub,
    },
  };
}

class Webhook {
  readonly stats: WebhookStats;
  readonly #queue: TelemetryMessage[] = [];
  #busy = false;
  #stopped = false;

  constructor(
    hub: string,
    url: string,
    private readonly log: Logger,
    private readonly delays: readonly number[],
  ) {
    this.stats = { hub, url, delivered: 0, failed: 0, dropped: 0, backlog: 0 };
  }

  push(m: TelemetryMessage): void {
    this.#queue.push(m);
    if (this.#queue.length > WEBHOOK_BACKLOG) {
      this.#queue.shift();
      this.stats.dropped++;
    }
    this.stats.backlog = this.#queue.length;
    if (!this.#busy) void this.#drain();
  }

  stop(): void {
    this.#stopped = true;
  }

  async #drain(): Promise<void> {
    this.#busy = true;
    while (!this.#stopped) {
      const m = this.#queue.shift();
      this.stats.backlog = this.#queue.length;
      if (!m) break;
      if (await this.#send(m)) this.stats.delivered++;
      else this.stats.failed++;
    }
    this.#busy = false;
  }

  async #send(m: TelemetryMessage): Promise<boolean> {
    const { body, headers } = webhookRequest(m);
    for (let attempt = 0; ; attempt++) {
      let why: string;
      try {
        const res = await fetch(this.stats.url, {
          method: "POST",
          headers,
          body,
          signal: AbortSignal.timeout(TIMEOUT_MS),
        });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) return true;
        why = `answered ${res.status}`;
        if (res.status < 500 && res.status !== 429) {
          this.#failed(m, why);
          return false; // the webhook refuses this message: trying again changes nothing
        }
      } catch (err) {
        why = (err as Error).message;
      }
      const delay = this.delays[attempt];
      if (delay === undefined || this.#stopped) {
        this.#failed(m, why);
        return false;
      }
      await new Promise((r) => setTimeout(r, delay).unref());
    }
  }

  #failed(m: TelemetryMessage, why: string): void {
    this.stats.lastError = why;
    this.log.warn(
      { hub: this.stats.hub, url: this.stats.url, deviceId: m.deviceId, reason: why },
      "telemetry webhook did not take a message",
    );
  }
}

export class TelemetryWebhooks {
  readonly #hooks: Webhook[];
  readonly #stop: () => void;

  constructor(
    routes: Record<string, string[]>,
    telemetry: Pick<TelemetryLog, "watch">,
    log: Logger,
    delays: readonly number[] = RETRY_DELAYS_MS,
  ) {
    this.#hooks = Object.entries(routes).flatMap(([hub, urls]) =>
      urls.map((url) => new Webhook(hub, url, log, delays)),
    );
    this.#stop =
      this.#hooks.length === 0
        ? () => undefined
        : telemetry.watch((m) => {
            for (const h of this.#hooks) if (h.stats.hub === m.hub.toLowerCase()) h.push(m);
          });
  }

  /** Each webhook of `hub` with what it delivered, failed, dropped and has waiting. */
  stats(hub: string): WebhookStats[] {
    return this.#hooks.filter((h) => h.stats.hub === hub.toLowerCase()).map((h) => ({ ...h.stats }));
  }

  close(): void {
    this.#stop();
    for (const h of this.#hooks) h.stop();
  }
}
