// Count quotas on enrollments (behaviors.md §9): individual enrollments per service, enrollment
// groups per service and attestation type. Checked before a new one is written; over the limit
// the write is refused with the quota error and nothing is stored.
import type { EnrollmentGroup, IndividualEnrollment } from "../domain/enrollment.js";
import { ProvisioError } from "../domain/errors.js";
import type { IdScope } from "../domain/ids.js";
import type { Instance } from "../domain/instance.js";
import { type Limits, unlimited, wouldExceed } from "../domain/limits.js";
import type { EnrollmentStore } from "../store/store.js";

export type EnrollmentLimits = Pick<Limits, "maxEnrollments" | "maxX509Groups" | "maxSymmetricKeyGroups">;

const isGroup = (r: IndividualEnrollment | EnrollmentGroup): r is EnrollmentGroup => "enrollmentGroupId" in r;

export class EnrollmentQuotas {
  constructor(
    private readonly store: Pick<EnrollmentStore, "countRecords" | "listGroups">,
    private readonly limits: EnrollmentLimits,
  ) {}

  /** Refuses a new `record` when its kind is at the limit. */
  async checkNew(instance: Instance, record: IndividualEnrollment | EnrollmentGroup): Promise<void> {
    const refuse = (limit: number, what: string, setting: string) =>
      new ProvisioError("quotaExceeded", { instance: instance.name, limit, what, setting });
    if (!isGroup(record)) {
      const limit = this.limits.maxEnrollments;
      if (unlimited(limit)) return;
      const n = await this.store.countRecords(instance.idScope, "enrollments");
      if (wouldExceed(n, limit)) throw refuse(limit, "individual enrollments", "PROVISIO_MAX_ENROLLMENTS");
      return;
    }
    const type = record.attestation.type;
    const [limit, what, setting] =
      type === "x509"
        ? [this.limits.maxX509Groups, "X.509 enrollment groups", "PROVISIO_MAX_X509_GROUPS"]
        : [this.limits.maxSymmetricKeyGroups, "symmetric-key enrollment groups", "PROVISIO_MAX_SYMMETRIC_KEY_GROUPS"];
    if (unlimited(limit)) return;
    if (wouldExceed(await this.countGroups(instance.idScope, type), limit)) throw refuse(limit, what, setting);
  }

  /** Groups are few (a quota of 100 a type): counted by reading them. */
  private async countGroups(scope: IdScope, type: string): Promise<number> {
    let n = 0;
    let after: string | undefined;
    do {
      const page = await this.store.listGroups(scope, { limit: 1000, ...(after ? { after } : {}) });
      n += page.items.filter((g) => g.attestation.type === type).length;
      after = page.next;
    } while (after);
    return n;
  }
}
