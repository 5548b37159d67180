// The registration records quota (behaviors.md §9: 1,000,000 per service): a device registering
// for the first time is refused once the service holds the maximum. Counting on every first
// registration would scan the table, so the count is read at most every few seconds and kept
// up to date in between by the registrations this node admits; several nodes may together pass
// the limit by what they admit within that time.
import { ProvisioError } from "../domain/errors.js";
import type { IdScope } from "../domain/ids.js";
import type { Instance } from "../domain/instance.js";
import { unlimited } from "../domain/limits.js";
import type { EnrollmentStore } from "../store/store.js";

const FRESH_MS = 5_000;

export class RecordCounts {
  readonly #counts = new Map<IdScope, { n: number; at: number }>();

  constructor(
    private readonly store: Pick<EnrollmentStore, "countRecords">,
    private readonly limit: number,
  ) {}

  /** Takes a place for a new record, or refuses with the quota error. */
  async admitNew(instance: Instance, now = Date.now()): Promise<void> {
    if (unlimited(this.limit)) return;
    let c = this.#counts.get(instance.idScope);
    if (!c || now - c.at > FRESH_MS) {
      c = { n: await this.store.countRecords(instance.idScope, "registrations"), at: now };
      this.#counts.set(instance.idScope, c);
    }
    if (c.n >= this.limit) {
      throw new ProvisioError("quotaExceeded", {
        instance: instance.name,
        limit: this.limit,
        what: "registration records",
        setting: "PROVISIO_MAX_REGISTRATIONS",
      });
    }
    c.n++;
  }
}
