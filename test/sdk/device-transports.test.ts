// One acceptance suite for every device transport: the same scenarios, with the real provisioning
// device SDK, over HTTPS, MQTT, MQTT over WebSockets, AMQP and AMQP over WebSockets. X.509 devices
// run over the same transports in device-x509.test.ts.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import deviceSdk from "azure-iot-device";
import deviceMqtt from "azure-iot-device-mqtt";
import type { ProvisioningServiceClient } from "azure-iot-provisioning-service";
import {
  amqpWsTransport,
  DEVICE_TRANSPORTS,
  deriveKey,
  type RegistrationResult,
  registerWithKey,
} from "../support/device-clients.js";
import { deviceToken, enrollGroup, enrollIndividual } from "../support/enrollments.js";
import { hubOf, registryClient } from "../support/hub-clients.js";
import { call } from "../support/management.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { serviceClient } from "../support/service-client.js";

const { Client, Message } = deviceSdk;
const { Mqtt } = deviceMqtt;

describe("every device transport provisions with the real SDK", () => {
  let p: ProvisioProcess;
  let svc: ProvisioningServiceClient;
  let groupKey: string;

  before(async () => {
    // This suite reaches the built-in hub over its REST API (HubClient), as it would a real
    // Azure IoT Hub; the others use the default in-process client.
    p = await startProvisio({ env: { PROVISIO_BUILTIN_HUB_CLIENT: "rest" } });
    svc = serviceClient(p);
    groupKey = await enrollGroup(svc, "transport-group", { initialTwin: { tags: { via: "group" } } });
  });
  after(async () => {
    await p.dispose();
  });

  const individualKey = (registrationId: string, extra: Record<string, unknown> = {}) =>
    enrollIndividual(svc, registrationId, extra);

  test("AMQP over WebSockets at /, where the C# SDK dials it, registers too", async () => {
    const key = await individualKey("amqp-ws-root");
    const result = await registerWithKey(p, amqpWsTransport(p, "/").transport, "amqp-ws-root", key);
    assert.equal(result.status, "assigned");
  });

  for (const t of DEVICE_TRANSPORTS) {
    const slug = t.name.toLowerCase().replace(/[^a-z]+/g, "-");

    test(`${t.name}: an individual device is assigned, then connects to its hub and sends telemetry`, async () => {
      const id = `${slug}-ind`;
      const key = await individualKey(id);
      const { transport, host } = t.make(p);
      const result = await registerWithKey(p, transport, id, key, { via: t.name }, host);
      assert.equal(result.status, "assigned");
      assert.equal(result.assignedHub, hubOf(p).hostName);
      assert.equal(result.deviceId, id);
      assert.equal((await svc.getDeviceRegistrationState(id)).responseBody.status, "assigned");

      const device = Client.fromConnectionString(
        `HostName=${result.assignedHub};DeviceId=${result.deviceId};SharedAccessKey=${key};GatewayHostName=127.0.0.1:${p.info.ports.mqtt}`,
        Mqtt,
      );
      await device.setOptions({ ca: p.ca.toString() });
      await device.open();
      await device.sendEvent(new Message(JSON.stringify({ transport: t.name })));
      await device.close();
    });

    test(`${t.name}: a group device is assigned with its derived key and gets the group's initial twin`, async () => {
      const id = `${slug}-grp`;
      const { transport, host } = t.make(p);
      const result = await registerWithKey(p, transport, id, deriveKey(groupKey, id), undefined, host);
      assert.equal(result.status, "assigned");
      assert.deepEqual(result.symmetricKey, { enrollmentGroupId: "transport-group" });
      const registry = registryClient(p);
      assert.deepEqual((await registry.getTwin(id)).responseBody.tags, { via: "group" });
    });

    test(`${t.name}: a wrong key is refused`, async () => {
      const id = `${slug}-wrong`;
      await individualKey(id);
      const { transport, host } = t.make(p);
      // Over AMQP the refusal is the SASL outcome, which the SDK reports as NotConnectedError (§7.5).
      const refused = t.name.startsWith("AMQP") ? /^NotConnectedError/ : /Unauthorized|Not authorized/i;
      await assert.rejects(
        registerWithKey(p, transport, id, Buffer.alloc(32, 3).toString("base64"), undefined, host),
        (err: Error) => refused.test(`${err.name} ${err.message}`),
      );
    });

    test(`${t.name}: a disabled enrollment ends in status disabled`, async () => {
      const id = `${slug}-disabled`;
      const key = await individualKey(id, { provisioningStatus: "disabled" });
      const { transport, host } = t.make(p);
      await assert.rejects(registerWithKey(p, transport, id, key, undefined, host), /status is disabled/);
    });
  }
});

/** Connects a registered device to its hub over MQTT with its key and sends one message. */
async function sendFromDevice(p: ProvisioProcess, result: RegistrationResult, key: string, text: string) {
  const device = Client.fromConnectionString(
    `HostName=${result.assignedHub};DeviceId=${result.deviceId};SharedAccessKey=${key};GatewayHostName=127.0.0.1:${p.info.ports.mqtt}`,
    Mqtt,
  );
  await device.setOptions({ ca: p.ca.toString() });
  await device.open();
  await device.sendEvent(new Message(text));
  await device.close();
}

describe("every device transport polls when the answer takes longer than register waits", () => {
  let p: ProvisioProcess;
  let svc: ProvisioningServiceClient;
  before(async () => {
    // Every register answers "assigning" at once: the SDK polls its operation until assigned.
    p = await startProvisio({ env: { PROVISIO_REGISTER_WAIT_MS: "0" } });
    svc = serviceClient(p);
  });
  after(async () => {
    await p.dispose();
  });

  for (const t of DEVICE_TRANSPORTS) {
    test(`${t.name}: the device polls, ends assigned and reaches its hub`, async () => {
      const id = `polled-${t.name.toLowerCase().replace(/[^a-z]+/g, "-")}`;
      const key = await enrollIndividual(svc, id);
      const { transport, host } = t.make(p);
      const result = await registerWithKey(p, transport, id, key, undefined, host);
      assert.equal(result.status, "assigned");
      await sendFromDevice(p, result, key, `polled over ${t.name}`);
    });
  }
});

describe("every device transport when the service is throttling registrations", () => {
  let p: ProvisioProcess;
  let svc: ProvisioningServiceClient;
  let burnKey: string;
  before(async () => {
    // 60 a minute: a bucket of 60 that refills one a second, so a throttled device waits 1 s.
    p = await startProvisio({ env: { PROVISIO_REGISTRATIONS_PER_MINUTE: "60" } });
    svc = serviceClient(p);
    burnKey = await enrollIndividual(svc, "burner");
  });
  after(async () => {
    await p.dispose();
  });

  /** Registers until the service answers 429: the bucket is then empty. */
  const exhaust = async () => {
    for (let i = 0; i < 200; i++) {
      const r = await call(p, "PUT", `/${p.info.idScope}/registrations/burner/register?api-version=2019-03-31`, {
        body: JSON.stringify({ registrationId: "burner" }),
        auth: deviceToken(p, "burner", burnKey),
      });
      if (r.status === 429) return;
    }
    assert.fail("the service never throttled");
  };

  for (const t of DEVICE_TRANSPORTS) {
    // The HTTP transport takes a 429 as final, against Azure too (throttling.test.ts).
    if (t.name === "HTTPS") continue;
    test(`${t.name}: a throttled device waits the retry-after it was told and registers`, async () => {
      const id = `throttled-${t.name.toLowerCase().replace(/[^a-z]+/g, "-")}`;
      const key = await enrollIndividual(svc, id);
      await exhaust();
      const { transport, host } = t.make(p);
      const result = await registerWithKey(p, transport, id, key, undefined, host);
      assert.equal(result.status, "assigned");
      await sendFromDevice(p, result, key, `throttled over ${t.name}`);
    });
  }
});
