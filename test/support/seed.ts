// Writes records straight into a running server's SQLite file (a second real connection, as a
// second node would). Registration states are created only by the device API; until a test
// goes through it, this is how service-API tests get some.
import { join } from "node:path";
import type { IndividualEnrollment } from "../../src/domain/enrollment.js";
import { newEtag, nowUtc } from "../../src/domain/etag.js";
import type { IdScope } from "../../src/domain/ids.js";
import type { DeviceRegistrationState, RegistrationRecord } from "../../src/domain/registration-state.js";
import { loadMasterKey, SecretBox } from "../../src/security/secret-box.js";
import { openSqliteStore } from "../../src/store/sqlite/sqlite-store.js";

export async function seedRegistrations(
  dataDir: string,
  idScope: string,
  states: { registrationId: string; enrollmentGroupId?: string; status?: DeviceRegistrationState["status"] }[],
): Promise<void> {
  const store = openSqliteStore(join(dataDir, "provisio.db"), new SecretBox(loadMasterKey(dataDir)));
  try {
    for (const s of states) {
      const now = nowUtc();
      const record: RegistrationRecord = {
        state: {
          registrationId: s.registrationId as DeviceRegistrationState["registrationId"],
          createdDateTimeUtc: now,
          assignedHub: "hub-1.localhost",
          deviceId: s.registrationId,
          status: s.status ?? "assigned",
          substatus: "initialAssignment",
          lastUpdatedDateTimeUtc: now,
          etag: newEtag(),
        },
        ...(s.enrollmentGroupId
          ? { enrollmentGroupId: s.enrollmentGroupId as RegistrationRecord["enrollmentGroupId"] }
          : {}),
      };
      const r = await store.putRegistration(idScope as IdScope, record);
      if (!r.ok) throw new Error(`seeding ${s.registrationId} failed: ${r.reason}`);
    }
  } finally {
    await store.close();
  }
}

/** `count` symmetric-key individual enrollments `{prefix}{000001…}`, written straight to the store. */
export async function seedEnrollments(dataDir: string, idScope: string, prefix: string, count: number): Promise<void> {
  const store = openSqliteStore(join(dataDir, "provisio.db"), new SecretBox(loadMasterKey(dataDir)));
  const key = Buffer.alloc(32, 9).toString("base64");
  const width = String(count).length;
  try {
    for (let i = 1; i <= count; i++) {
      const now = nowUtc();
      const registrationId = `${prefix}${String(i).padStart(width, "0")}` as IndividualEnrollment["registrationId"];
      const r = await store.putEnrollment(idScope as IdScope, {
        registrationId,
        attestation: { type: "symmetricKey", symmetricKey: { primaryKey: key, secondaryKey: key } },
        provisioningStatus: "enabled",
        etag: newEtag(),
        createdDateTimeUtc: now,
        lastUpdatedDateTimeUtc: now,
      });
      if (!r.ok) throw new Error(`seeding ${registrationId} failed: ${r.reason}`);
    }
  } finally {
    await store.close();
  }
}
