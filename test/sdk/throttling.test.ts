// Throttled registrations (issue 15.1): over the rate limit every transport answers as DPS does,
// 429 with a retry-after and a DPS error body (over AMQP: a rejection the SDKs retry), and records
// nothing (behaviors.md §9).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { httpTransport, registerWithKey } from "../support/device-clients.js";
import { AMQP_FLAVOURS, connectDpsAmqp } from "../support/dps-amqp.js";
import { connectDps, GUID, MQTT_FLAVOURS } from "../support/dps-mqtt.js";
import { deviceToken, enrollIndividual } from "../support/enrollments.js";
import { call } from "../support/management.js";
import { scrape } from "../support/metrics.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { serviceClient } from "../support/service-client.js";

describe("registration throttling", () => {
  let p: ProvisioProcess;
  let key: string;
  before(async () => {
    // One registration a minute: after the first, every register in this suite is over the limit.
    p = await startProvisio({ env: { PROVISIO_REGISTRATIONS_PER_MINUTE: "1" } });
    key = await enrollIndividual(serviceClient(p), "throttled-dev");
    const first = await registerWithKey(p, httpTransport(p), "throttled-dev", key);
    assert.equal(first.status, "assigned");
  });
  after(async () => {
    await p.dispose();
  });

  test("HTTPS: a throttled register is 429 with Retry-After and a DPS error body", async () => {
    const r = await call(p, "PUT", `/${p.info.idScope}/registrations/throttled-dev/register?api-version=2019-03-31`, {
      body: JSON.stringify({ registrationId: "throttled-dev" }),
      auth: deviceToken(p, "throttled-dev", key),
    });
    assert.equal(r.status, 429);
    assert.match(String(r.headers["retry-after"]), /^[1-9]\d*$/);
    assert.equal(r.headers["x-ms-error-code"], "429001");
    const body = r.json() as { errorCode: number; trackingId: string; message: string; timestampUtc: string };
    assert.equal(body.errorCode, 429001);
    assert.match(body.trackingId, GUID);
    assert.match(body.message, /Retry-After/);
    assert.ok(!("operationId" in body), "no operation was opened");
  });

  test("HTTPS: the Node SDK's HTTP transport takes the 429 as final, as it does against Azure", async () => {
    await assert.rejects(registerWithKey(p, httpTransport(p), "throttled-dev", key), (err: Error) => {
      assert.equal(err.name, "ThrottlingError");
      assert.match(err.message, /429001/);
      return true;
    });
  });

  for (const flavour of MQTT_FLAVOURS) {
    test(`${flavour}: a throttled register is res/429 with retry-after and a body with a fresh trackingId`, async () => {
      const device = await connectDps(p, flavour, {
        registrationId: "throttled-dev",
        password: deviceToken(p, "throttled-dev", key),
      });
      try {
        assert.equal(device.returnCode, 0);
        const first = await device.register();
        const second = await device.register();
        for (const answer of [first, second]) {
          // ≥ 429 with retry-after makes the SDKs wait and register again (device-api.md §6.3).
          assert.equal(answer.status, 429);
          assert.match(answer.query.get("retry-after") ?? "", /^[1-9]\d*$/);
          assert.equal(answer.body.errorCode, 429001);
          assert.match(String(answer.body.trackingId), GUID);
        }
        assert.notEqual(first.body.trackingId, second.body.trackingId);
      } finally {
        await device.end();
      }
    });
  }

  for (const flavour of AMQP_FLAVOURS) {
    test(`${flavour}: a throttled register is rejected as device-container-throttled with retry-after and the DPS body`, async () => {
      // SASL attests, the register is what the limit refuses: the SDKs retry this condition (§7.5).
      const connected = await connectDpsAmqp(p, flavour, {
        registrationId: "throttled-dev",
        password: deviceToken(p, "throttled-dev", key),
      });
      assert.ok(connected.ok, connected.ok ? "" : connected.error);
      try {
        const a = await connected.device.register();
        assert.equal(a.kind, "rejected");
        if (a.kind !== "rejected") return;
        assert.equal(a.condition, "com.microsoft:device-container-throttled");
        assert.match(String(a.info?.["retry-after"]), /^[1-9]\d*$/);
        const body = JSON.parse(a.description) as { errorCode: number; trackingId: string };
        assert.equal(body.errorCode, 429001);
        assert.match(body.trackingId, GUID);
      } finally {
        await connected.device.end();
      }
    });
  }

  test("every throttled register is counted, by protocol", async () => {
    const { series } = await scrape(p);
    for (const protocol of ["http", "mqtt", "mqttws", "amqp", "amqpws"]) {
      const n = series.get(
        `provisio_throttled_requests_total{provisioning_service_name="provisio",protocol="${protocol}"}`,
      );
      assert.ok((n ?? 0) >= 1, `${protocol}: ${n}`);
    }
  });

  test("a throttled attempt leaves the registration record as it was", async () => {
    const state = (await serviceClient(p).getDeviceRegistrationState("throttled-dev")).responseBody;
    assert.equal(state.status, "assigned");
  });
});
