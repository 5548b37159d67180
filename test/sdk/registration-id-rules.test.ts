// Registration ids outside DPS's rules (issue 15.2, behaviors.md §1.1) are refused with 400 at
// every entry point — HTTPS path and body, MQTT username and body, the service API — before
// anything is attested, allocated, sent to a hub or recorded.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { ProvisioningServiceClient } from "azure-iot-provisioning-service";
import { createSasToken } from "../../src/attestation/sas-token.js";
import { deriveKey } from "../support/device-clients.js";
import { AMQP_FLAVOURS, connectDpsAmqp } from "../support/dps-amqp.js";
import { connectDps, MQTT_FLAVOURS } from "../support/dps-mqtt.js";
import { deviceToken, enrollGroup } from "../support/enrollments.js";
import { registryClient } from "../support/hub-clients.js";
import { call, type HttpReply } from "../support/management.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { serviceClient } from "../support/service-client.js";

const BAD = "bad id!";
const API = "?api-version=2019-03-31";

function assertInvalidId(r: HttpReply, code = 400006): void {
  assert.equal(r.status, 400, r.text);
  const body = r.json() as { errorCode: number; message: string };
  assert.equal(body.errorCode, code);
  assert.match(body.message, /is invalid: use 1-128 characters from A-Z a-z 0-9 - \. _ :/);
}

describe("registration ids outside DPS's rules", () => {
  let p: ProvisioProcess;
  let svc: ProvisioningServiceClient;
  let groupKey: string;
  /** A token that would attest `id` through the group, were the id acceptable. */
  const tokenFor = (id: string) => deviceToken(p, id, deriveKey(groupKey, id));
  const devicePath = (id: string, rest: string) =>
    `/${p.info.idScope}/registrations/${encodeURIComponent(id)}${rest}${API}`;

  before(async () => {
    p = await startProvisio();
    svc = serviceClient(p);
    groupKey = await enrollGroup(svc, "id-rules-group");
  });
  after(async () => {
    await p.dispose();
  });

  /** Nothing of the refused device exists anywhere: no record under its group, no hub identity. */
  async function assertNothingRecorded(): Promise<void> {
    const records = await new Promise<unknown[]>((resolve, reject) =>
      svc
        .createEnrollmentGroupDeviceRegistrationStateQuery({ query: "*" }, "id-rules-group")
        .next((err, result) => (err ? reject(err) : resolve((result ?? []) as unknown[]))),
    );
    assert.deepEqual(records, []);
    await assert.rejects(registryClient(p).get(BAD), (err: Error) => err.name === "DeviceNotFoundError");
  }

  test("HTTPS: an invalid id in the path, with a SAS that would attest it, is 400006 and nothing is recorded", async () => {
    const r = await call(p, "PUT", devicePath(BAD, "/register"), {
      body: JSON.stringify({ registrationId: BAD }),
      auth: tokenFor(BAD),
    });
    assertInvalidId(r);
    await assertNothingRecorded();
  });

  test("HTTPS: an invalid id in the body is 400006, not a mismatch", async () => {
    const r = await call(p, "PUT", devicePath("good-id", "/register"), {
      body: JSON.stringify({ registrationId: "good-id!" }),
      auth: tokenFor("good-id"),
    });
    assertInvalidId(r);
  });

  test("HTTPS: operation status and registration status lookups refuse an invalid id too", async () => {
    assertInvalidId(await call(p, "GET", devicePath(BAD, "/operations/4.0.x"), { auth: tokenFor(BAD) }));
    assertInvalidId(await call(p, "POST", devicePath(BAD, ""), { body: "{}", auth: tokenFor(BAD) }));
  });

  test("HTTPS: a SAS whose sr names an invalid id does not attest a valid one", async () => {
    const token = createSasToken(
      deriveKey(groupKey, "good-id"),
      `${p.info.idScope}/registrations/${BAD}`,
      Math.floor(Date.now() / 1000) + 600,
      "registration",
    );
    const r = await call(p, "PUT", devicePath("good-id", "/register"), {
      body: JSON.stringify({ registrationId: "good-id" }),
      auth: token,
    });
    assert.equal(r.status, 401, r.text);
    assert.match((r.json() as { message: string }).message, /must be for/);
  });

  for (const flavour of MQTT_FLAVOURS) {
    test(`${flavour}: an invalid id in the username or the body is answered res/400 with 400006`, async () => {
      const device = await connectDps(p, flavour, { registrationId: BAD, password: tokenFor(BAD) });
      try {
        assert.equal(device.returnCode, 0);
        const a = await device.register();
        assert.equal(a.status, 400);
        assert.equal(a.body.errorCode, 400006);
      } finally {
        await device.end();
      }
      const good = await connectDps(p, flavour, { registrationId: "good-id", password: tokenFor("good-id") });
      try {
        const a = await good.register({ registrationId: "good-id!" });
        assert.equal(a.status, 400);
        assert.equal(a.body.errorCode, 400006);
      } finally {
        await good.end();
      }
      await assertNothingRecorded();
    });
  }

  for (const flavour of AMQP_FLAVOURS) {
    test(`${flavour}: an invalid id fails SASL; in the body it is rejected with 400006`, async () => {
      const refused = await connectDpsAmqp(p, flavour, { registrationId: BAD, password: tokenFor(BAD) });
      assert.equal(refused.ok, false, "refused at SASL, as a wrong key is");
      const good = await connectDpsAmqp(p, flavour, { registrationId: "good-id", password: tokenFor("good-id") });
      assert.ok(good.ok, good.ok ? "" : good.error);
      try {
        const a = await good.device.register({ registrationId: "good-id!" });
        assert.equal(a.kind, "rejected");
        if (a.kind === "rejected") {
          assert.equal(a.condition, "com.microsoft:argument-error");
          assert.equal((JSON.parse(a.description) as { errorCode: number }).errorCode, 400006);
        }
      } finally {
        await good.device.end();
      }
      await assertNothingRecorded();
    });
  }

  test("service API: registration state, enrollment and group lookups refuse invalid ids with 400", async () => {
    const path = (p1: string) => `${p1}${API}`;
    assertInvalidId(await call(p, "GET", path(`/registrations/${encodeURIComponent(BAD)}`)));
    assertInvalidId(await call(p, "DELETE", path(`/registrations/${encodeURIComponent(BAD)}`)));
    assertInvalidId(await call(p, "GET", path(`/enrollments/${encodeURIComponent(BAD)}`)));
    assertInvalidId(await call(p, "GET", path("/enrollmentGroups/group%23one")), 400007);
    assertInvalidId(await call(p, "POST", path("/registrations/group%23one/query"), { body: "{}" }), 400007);
    // The real service SDK hears an ArgumentError, as from DPS.
    await assert.rejects(svc.getDeviceRegistrationState(BAD), (err: Error) => err.name === "ArgumentError");
  });
});
