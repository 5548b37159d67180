// A device that re-provisions when its back end asks (DPS's advice for moving devices, seed 001:
// "send a direct method or job to the device to make it register again"). It registers with the
// provisioning service over MQTT, connects to the hub it was given, and on the direct method
// `reprovision` answers, disconnects, registers again and connects to its new hub.
//
//   node dist/examples/reprovision-by-method/device.js --data-dir provisio-data \
//     --registration-id my-device --key <enrollment primary key> [--once]
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
// The Azure IoT packages are CommonJS: their default export, destructured.
import iotDevice from "azure-iot-device";
import iotDeviceMqtt from "azure-iot-device-mqtt";
import provisioningDevice from "azure-iot-provisioning-device";
import provisioningMqtt from "azure-iot-provisioning-device-mqtt";
import symmetricKey from "azure-iot-security-symmetric-key";

const { Client } = iotDevice;
const { Mqtt } = iotDeviceMqtt;
const { ProvisioningDeviceClient } = provisioningDevice;
const { Mqtt: ProvisioningMqtt } = provisioningMqtt;
const { SymmetricKeySecurityClient } = symmetricKey;

const { values: args } = parseArgs({
  options: {
    "data-dir": { type: "string", default: "provisio-data" },
    "registration-id": { type: "string" },
    key: { type: "string" },
    once: { type: "boolean", default: false },
  },
});
const registrationId = args["registration-id"];
const key = args.key;
if (!registrationId || !key) throw new Error("Give --registration-id and --key (the enrollment's primary key).");

const info = JSON.parse(readFileSync(join(args["data-dir"], "provisio.json"), "utf8"));
const ca = readFileSync(info.caFile, "utf8");

type Create = typeof ProvisioningDeviceClient.create;

/** Registers with the provisioning service; resolves to the hub and device id it assigned. */
async function provision(): Promise<{ assignedHub: string; deviceId: string }> {
  const transport = new ProvisioningMqtt();
  // The transport's MQTT options are private; this is how the CA reaches it (see the README quickstart).
  (transport as unknown as { _mqttBase: { setOptions(o: unknown): void } })._mqttBase.setOptions({ ca });
  const security = new SymmetricKeySecurityClient(registrationId as string, key as string);
  const client = ProvisioningDeviceClient.create(
    `${info.host}:${info.ports.mqtt}`,
    info.idScope,
    transport as unknown as Parameters<Create>[2],
    security as unknown as Parameters<Create>[3],
  );
  const result = (await client.register()) as unknown as { assignedHub: string; deviceId: string };
  return { assignedHub: result.assignedHub, deviceId: result.deviceId };
}

/** Connects to the hub over MQTT (the port rides in GatewayHostName) and waits for `reprovision`. */
async function connect(assignedHub: string, deviceId: string): Promise<void> {
  const hub = Client.fromConnectionString(
    `HostName=${assignedHub};DeviceId=${deviceId};SharedAccessKey=${key};GatewayHostName=${info.host}:${info.ports.mqtt}`,
    Mqtt,
  );
  await hub.setOptions({ ca });
  await hub.open();
  hub.onDeviceMethod("reprovision", (request, response) => {
    console.log(`reprovision asked: ${JSON.stringify(request.payload)}`);
    response.send(200, { reprovisioning: true }, async () => {
      await hub.close();
      const next = await provision();
      console.log(`re-provisioned to ${next.assignedHub} as ${next.deviceId}`);
      if (args.once) process.exit(0);
      await connect(next.assignedHub, next.deviceId);
    });
  });
  console.log(`connected to ${assignedHub} as ${deviceId}, listening for the 'reprovision' method`);
}

const first = await provision();
console.log(`assigned to ${first.assignedHub} as ${first.deviceId}`);
await connect(first.assignedHub, first.deviceId);
