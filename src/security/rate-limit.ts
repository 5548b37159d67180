// Registration rate limits per provisioning service (behaviors.md §9): a token bucket per key.
// A refused call learns how long to wait, so devices back off instead of failing.

/** A rate limit: nodes sharing a database will share it through an implementation of their own. */
export interface RateLimit {
  /** Take one token; resolves to undefined when allowed, else the seconds to wait. */
  take(key: string): number | undefined | Promise<number | undefined>;
}

/** The limit of one node, in memory. */
export class RateLimiter implements RateLimit {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  readonly #perMs: number;

  /**
   * `limit` per `windowMs` (a minute unless said); ≤ 0 means unlimited. The bucket holds one
   * window's worth (bursts allowed).
   */
  constructor(
    private readonly limit: number,
    private readonly windowMs = 60_000,
  ) {
    this.#perMs = limit / windowMs;
  }

  /** Take one token; resolves to undefined when allowed, else the seconds to wait. */
  take(key: string, now = Date.now()): number | undefined {
    if (this.limit <= 0) return undefined;
    const b = this.#buckets.get(key) ?? { tokens: this.limit, at: now };
    b.tokens = Math.min(this.limit, b.tokens + (now - b.at) * this.#perMs);
    b.at = now;
    this.#buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return undefined;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / this.#perMs / 1000));
  }

  /** Forgets buckets full again (untouched for a window): many keys (devices) stay bounded. */
  prune(now = Date.now()): void {
    for (const [key, b] of this.#buckets) if (now - b.at >= this.windowMs) this.#buckets.delete(key);
  }
}
