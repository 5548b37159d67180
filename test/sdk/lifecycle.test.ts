// Device lifecycle with the real SDKs on two built-in hubs (behaviors.md §6, §8): the three
// reprovision policies, disenrollment, deprovisioning and key rolling.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { ProvisioningServiceClient } from "azure-iot-provisioning-service";
import type { EnrollmentGroup, IndividualEnrollment } from "azure-iot-provisioning-service/dist/interfaces.js";
import { deriveKey, httpTransport, registerWithKey } from "../support/device-clients.js";
import { deviceToken } from "../support/enrollments.js";
import { hubOf, registryClient } from "../support/hub-clients.js";
import { call } from "../support/management.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { serviceClient } from "../support/service-client.js";

describe("device lifecycle", () => {
  let p: ProvisioProcess;
  let svc: ProvisioningServiceClient;
  let hub1: string;
  let hub2: string;

  const register = (id: string, key: string) => registerWithKey(p, httpTransport(p), id, key);
  const registry = (hub: string) => registryClient(p, hubOf(p, hub === hub1 ? 0 : 1).connectionString);
  const notFound = (err: Error) => err.name === "DeviceNotFoundError";

  /** An individual enrollment pinned to `hub` (static) with the given reprovision policy. */
  async function enroll(
    id: string,
    hub: string,
    policy?: { updateHubAssignment: boolean; migrateDeviceData: boolean },
  ) {
    const body = {
      registrationId: id,
      attestation: { type: "symmetricKey" },
      allocationPolicy: "static",
      iotHubs: [hub],
      initialTwin: { tags: { origin: "initial" }, properties: { desired: { mode: "factory" } } },
      ...(policy ? { reprovisionPolicy: policy } : {}),
    };
    return (await svc.createOrUpdateIndividualEnrollment(body as unknown as IndividualEnrollment)).responseBody;
  }

  /** Move the enrollment to another hub (what an operator does before a device reprovisions). */
  async function repin(id: string, hub: string) {
    const e = (await svc.getIndividualEnrollment(id)).responseBody;
    await svc.createOrUpdateIndividualEnrollment({ ...e, iotHubs: [hub] });
  }

  before(async () => {
    p = await startProvisio({ args: ["--hubs", "2"] });
    svc = serviceClient(p);
    hub1 = hubOf(p, 0).hostName;
    hub2 = hubOf(p, 1).hostName;
  });
  after(async () => {
    await p.dispose();
  });

  test("re-provision and migrate data: a new hub gets the old twin (tags, desired); the old hub loses the device", async () => {
    const e = await enroll("migrate-dev", hub1, { updateHubAssignment: true, migrateDeviceData: true });
    const key = e.attestation.symmetricKey?.primaryKey ?? "";
    assert.equal((await register("migrate-dev", key)).substatus, "initialAssignment");
    await registry(hub1).updateTwin(
      "migrate-dev",
      { tags: { learned: 1 }, properties: { desired: { mode: "tuned" } } },
      "*",
    );
    await repin("migrate-dev", hub2);
    const second = await register("migrate-dev", key);
    assert.equal(second.assignedHub, hub2);
    assert.equal(second.substatus, "deviceDataMigrated");
    const twin = (await registry(hub2).getTwin("migrate-dev")).responseBody;
    assert.deepEqual(twin.tags, { origin: "initial", learned: 1 });
    assert.equal(twin.properties.desired.mode, "tuned");
    await assert.rejects(registry(hub1).get("migrate-dev"), notFound);
  });

  test("re-provision and reset: a new hub gets the enrollment's initial twin; the old hub loses the device", async () => {
    const e = await enroll("reset-dev", hub1, { updateHubAssignment: true, migrateDeviceData: false });
    const key = e.attestation.symmetricKey?.primaryKey ?? "";
    await register("reset-dev", key);
    await registry(hub1).updateTwin("reset-dev", { tags: { learned: 1 } }, "*");
    await repin("reset-dev", hub2);
    const second = await register("reset-dev", key);
    assert.equal(second.assignedHub, hub2);
    assert.equal(second.substatus, "deviceDataReset");
    const twin = (await registry(hub2).getTwin("reset-dev")).responseBody;
    assert.deepEqual(twin.tags, { origin: "initial" });
    assert.equal(twin.properties.desired.mode, "factory");
    await assert.rejects(registry(hub1).get("reset-dev"), notFound);
  });

  test("never re-provision: the device stays on its hub even when the enrollment points elsewhere", async () => {
    const e = await enroll("never-dev", hub1, { updateHubAssignment: false, migrateDeviceData: false });
    const key = e.attestation.symmetricKey?.primaryKey ?? "";
    await register("never-dev", key);
    await registry(hub1).updateTwin("never-dev", { tags: { learned: 1 } }, "*");
    await repin("never-dev", hub2);
    const second = await register("never-dev", key);
    assert.equal(second.assignedHub, hub1);
    assert.equal(second.substatus, "reprovisionedToInitialAssignment");
    assert.deepEqual((await registry(hub1).getTwin("never-dev")).responseBody.tags, { origin: "initial", learned: 1 });
    await assert.rejects(registry(hub2).get("never-dev"), notFound);
  });

  test("registering again on the same hub keeps the twin and refreshes the identity", async () => {
    const e = await enroll("same-hub-dev", hub1);
    const key = e.attestation.symmetricKey?.primaryKey ?? "";
    await register("same-hub-dev", key);
    await registry(hub1).updateTwin("same-hub-dev", { tags: { learned: 1 } }, "*");
    const second = await register("same-hub-dev", key);
    assert.equal(second.substatus, "reprovisionedToInitialAssignment");
    assert.deepEqual((await registry(hub1).getTwin("same-hub-dev")).responseBody.tags, {
      origin: "initial",
      learned: 1,
    });
  });

  test("disenrollment: disable blocks, delete re-opens the path through a still-enabled group", async () => {
    const groupKey =
      (
        await svc.createOrUpdateEnrollmentGroup({
          enrollmentGroupId: "lifecycle-group",
          attestation: { type: "symmetricKey" },
        } as EnrollmentGroup)
      ).responseBody.attestation.symmetricKey?.primaryKey ?? "";
    const key = deriveKey(groupKey, "member-dev");
    assert.equal((await register("member-dev", key)).status, "assigned");

    // A disabled individual enrollment of the same id blocks just this device of the group.
    await svc.createOrUpdateIndividualEnrollment({
      registrationId: "member-dev",
      attestation: { type: "symmetricKey" },
      provisioningStatus: "disabled",
    } as IndividualEnrollment);
    await assert.rejects(register("member-dev", key), /status is disabled/);
    assert.equal((await register("other-member", deriveKey(groupKey, "other-member"))).status, "assigned");

    // Deleting the blocking entry (rather than enabling it) lets the group admit the device again.
    await svc.deleteIndividualEnrollment("member-dev");
    assert.equal((await register("member-dev", key)).status, "assigned");

    // Disabling the whole group blocks all its devices.
    const g = (await svc.getEnrollmentGroup("lifecycle-group")).responseBody;
    await svc.createOrUpdateEnrollmentGroup({ ...g, provisioningStatus: "disabled" });
    await assert.rejects(register("other-member", deriveKey(groupKey, "other-member")), /status is disabled/);
  });

  test("a disabled attempt keeps the record coherent: created time and last assignment stay, status and time change", async () => {
    const groupKey =
      (
        await svc.createOrUpdateEnrollmentGroup({
          enrollmentGroupId: "coherent-group",
          attestation: { type: "symmetricKey" },
          iotHubs: [hub2],
          allocationPolicy: "static",
        } as unknown as EnrollmentGroup)
      ).responseBody.attestation.symmetricKey?.primaryKey ?? "";
    const e = await enroll("coherent-dev", hub1);
    const devices: [string, string, () => Promise<void>, () => Promise<void>, string][] = [
      [
        "coherent-dev",
        e.attestation.symmetricKey?.primaryKey ?? "",
        async () => {
          const cur = (await svc.getIndividualEnrollment("coherent-dev")).responseBody;
          await svc.createOrUpdateIndividualEnrollment({ ...cur, provisioningStatus: "disabled" });
        },
        async () => {
          const cur = (await svc.getIndividualEnrollment("coherent-dev")).responseBody;
          await svc.createOrUpdateIndividualEnrollment({ ...cur, provisioningStatus: "enabled" });
        },
        hub1,
      ],
      [
        "coherent-member",
        deriveKey(groupKey, "coherent-member"),
        async () => {
          const g = (await svc.getEnrollmentGroup("coherent-group")).responseBody;
          await svc.createOrUpdateEnrollmentGroup({ ...g, provisioningStatus: "disabled" });
        },
        async () => {
          const g = (await svc.getEnrollmentGroup("coherent-group")).responseBody;
          await svc.createOrUpdateEnrollmentGroup({ ...g, provisioningStatus: "enabled" });
        },
        hub2,
      ],
    ];
    for (const [id, key, disable, enable, hub] of devices) {
      assert.equal((await register(id, key)).status, "assigned");
      await registry(hub).updateTwin(id, { tags: { learned: id } }, "*");
      const first = (await svc.getDeviceRegistrationState(id)).responseBody;
      await disable();
      await new Promise((r) => setTimeout(r, 20)); // a later lastUpdatedDateTimeUtc
      await assert.rejects(register(id, key), /status is disabled/);
      // The device hears "disabled" and no assignment; the operator's record keeps it.
      const raw = await call(p, "PUT", `/${p.info.idScope}/registrations/${id}/register?api-version=2019-03-31`, {
        body: JSON.stringify({ registrationId: id }),
        auth: deviceToken(p, id, key),
      });
      const told = (raw.json() as { status: string; registrationState: Record<string, unknown> }).registrationState;
      assert.equal(told.status, "disabled");
      assert.equal("assignedHub" in told || "deviceId" in told, false, JSON.stringify(told));
      const blocked = (await svc.getDeviceRegistrationState(id)).responseBody;
      assert.equal(blocked.status, "disabled", id);
      assert.equal(blocked.createdDateTimeUtc, first.createdDateTimeUtc, `${id}: created time kept`);
      assert.ok(blocked.lastUpdatedDateTimeUtc > first.lastUpdatedDateTimeUtc, `${id}: last-updated time moves`);
      assert.equal(blocked.assignedHub, hub, `${id}: last assignment kept`);
      assert.equal(blocked.deviceId, id, `${id}: last assignment kept`);
      assert.notEqual(blocked.etag, first.etag);
      // Enabled again, the device is where it was: same hub, its twin untouched.
      await enable();
      const again = await register(id, key);
      assert.equal(again.assignedHub, hub);
      assert.equal(again.substatus, "reprovisionedToInitialAssignment", id);
      assert.equal((await registry(hub).getTwin(id)).responseBody.tags.learned, id);
      assert.equal(
        (await svc.getDeviceRegistrationState(id)).responseBody.createdDateTimeUtc,
        first.createdDateTimeUtc,
      );
    }
  });

  test("deprovisioning: deleting the registration state with ?deprovision=true also removes the hub identity", async () => {
    const e = await enroll("deprov-dev", hub2);
    const key = e.attestation.symmetricKey?.primaryKey ?? "";
    await register("deprov-dev", key);
    await registry(hub2).get("deprov-dev");

    // Without the flag the hub identity stays (behaviors.md §7.2).
    await svc.deleteDeviceRegistrationState("deprov-dev");
    await registry(hub2).get("deprov-dev");
    assert.equal((await register("deprov-dev", key)).substatus, "initialAssignment");

    const r = await call(p, "DELETE", "/registrations/deprov-dev?deprovision=true");
    assert.equal(r.status, 204, r.text);
    await assert.rejects(registry(hub2).get("deprov-dev"), notFound);
    await assert.rejects(svc.getDeviceRegistrationState("deprov-dev"), /Not found/);
  });

  test("key rolling: the secondary key works; after the keys are swapped the hub identity gets the new keys", async () => {
    const e = await enroll("rolling-dev", hub1);
    const keys = e.attestation.symmetricKey;
    assert.ok(keys?.primaryKey && keys.secondaryKey);
    assert.equal((await register("rolling-dev", keys.secondaryKey)).status, "assigned");

    const fresh = Buffer.alloc(32, 0x5a).toString("base64");
    const current = (await svc.getIndividualEnrollment("rolling-dev")).responseBody;
    await svc.createOrUpdateIndividualEnrollment({
      ...current,
      attestation: { type: "symmetricKey", symmetricKey: { primaryKey: keys.secondaryKey, secondaryKey: fresh } },
    });
    await assert.rejects(register("rolling-dev", keys.primaryKey), (err: Error) => err.name === "UnauthorizedError");
    assert.equal((await register("rolling-dev", fresh)).status, "assigned");
    const identity = (await registry(hub1).get("rolling-dev")).responseBody;
    assert.equal(identity.authentication?.symmetricKey?.primaryKey, keys.secondaryKey);
    assert.equal(identity.authentication?.symmetricKey?.secondaryKey, fresh);
  });
});
