// One acceptance suite for every device transport (issue: MQTT registration): the same
// scenarios, with the real provisioning device SDK, over HTTPS, MQTT and MQTT over WebSockets.
// (AMQP joins DEVICE_TRANSPORTS when it lands.)
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import deviceSdk from "azure-iot-device";
import deviceMqtt from "azure-iot-device-mqtt";
import type { ProvisioningServiceClient } from "azure-iot-provisioning-service";
import { DEVICE_TRANSPORTS, deriveKey, registerWithKey } from "../support/device-clients.js";
import { enrollGroup, enrollIndividual } from "../support/enrollments.js";
import { hubOf, registryClient } from "../support/hub-clients.js";
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
      await assert.rejects(
        registerWithKey(p, transport, id, Buffer.alloc(32, 3).toString("base64"), undefined, host),
        (err: Error) => /Unauthorized|Not authorized/i.test(`${err.name} ${err.message}`),
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
