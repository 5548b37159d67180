// The registration rate limit of a cluster (behaviors.md §9): one token bucket per provisioning
// service in the shared database, so the limit holds across every node. The refill is computed
// by the database's clock, never the nodes' (they may disagree); one statement a registration.
import type pg from "pg";
import type { RateLimit } from "../../security/rate-limit.js";

export class PgRateLimit implements RateLimit {
  readonly #perSecond: number;

  /** `perMinute` ≤ 0 means unlimited. The bucket holds one minute's worth, as the local limiter. */
  constructor(
    private readonly pool: pg.Pool,
    private readonly perMinute: number,
  ) {
    this.#perSecond = perMinute / 60;
  }

  async take(key: string): Promise<number | undefined> {
    if (this.perMinute <= 0) return undefined;
    const cap = this.perMinute;
    // In SET every expression sees the row as it was: `granted` and `tokens` use the same refill.
    const refill = "LEAST($2::float8, tokens + EXTRACT(EPOCH FROM clock_timestamp() - at)::float8 * $3::float8)";
    for (;;) {
      const { rows } = await this.pool.query<{ granted: boolean; tokens: number }>({
        name: "provisio_rate_take",
        text: `UPDATE rate_buckets SET granted = ${refill} >= 1,
                 tokens = ${refill} - CASE WHEN ${refill} >= 1 THEN 1 ELSE 0 END, at = clock_timestamp()
               WHERE bucket = $1 RETURNING granted, tokens`,
        values: [key, cap, this.#perSecond],
      });
      const row = rows[0];
      if (row) return row.granted ? undefined : Math.max(1, Math.ceil((1 - row.tokens) / this.#perSecond));
      // The first registration of this service: a full bucket, one token taken.
      const inserted = await this.pool.query(
        "INSERT INTO rate_buckets (bucket, tokens, at, granted) VALUES ($1, $2, clock_timestamp(), true) ON CONFLICT DO NOTHING",
        [key, cap - 1],
      );
      if (inserted.rowCount === 1) return undefined;
    }
  }
}
