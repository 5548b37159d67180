// The back end's half of moving a device (seed 001's advice): point its enrollment at another
// hub, then ask the device, on the hub it is connected to, to register again with the direct
// method `reprovision`. The enrollment's reprovision policy decides whether its twin moves too.
//
//   node dist/examples/reprovision-by-method/backend.js --data-dir provisio-data \
//     --registration-id my-device --to-hub hub-2.localhost

import { lookup } from "node:dns";
import { readFileSync } from "node:fs";
import { Agent } from "node:https";
import type { LookupFunction } from "node:net";
import { join } from "node:path";
import { parseArgs } from "node:util";
import provisioningService from "azure-iot-provisioning-service";
import iothub from "azure-iothub";

const { ProvisioningServiceClient } = provisioningService;

const { values: args } = parseArgs({
  options: {
    "data-dir": { type: "string", default: "provisio-data" },
    "registration-id": { type: "string" },
    "to-hub": { type: "string" },
  },
});
const registrationId = args["registration-id"];
const toHub = args["to-hub"];
if (!registrationId || !toHub) throw new Error("Give --registration-id and --to-hub (a linked hub's host name).");

const info = JSON.parse(readFileSync(join(args["data-dir"], "provisio.json"), "utf8"));
const ca = readFileSync(info.caFile, "utf8");
// Provisio's service API and its built-in hubs share one HTTPS port and address: the agent dials
// it for every host name (real hubs would be found by DNS on 443).
const toProvisio: LookupFunction = (_host, options, callback) => lookup(info.host, options, callback);
const agent = new Agent({ ca, lookup: toProvisio });
(agent as Agent & { defaultPort: number }).defaultPort = info.ports.https;

// 1. The enrollment now allows only the new hub.
const service = ProvisioningServiceClient.fromConnectionString(info.serviceConnectionString);
(service as unknown as { _restApiClient: { setOptions(o: unknown): void } })._restApiClient.setOptions({
  http: { agent },
});
const { responseBody: enrollment } = await service.getIndividualEnrollment(registrationId);
await service.createOrUpdateIndividualEnrollment({ ...enrollment, allocationPolicy: "static", iotHubs: [toHub] });
const { responseBody: state } = await service.getDeviceRegistrationState(registrationId);
console.log(`enrollment now points at ${toHub}; the device is on ${state.assignedHub}`);

// 2. Ask the device, on its current hub, to register again.
const hub = info.hubs.find((h: { hostName: string }) => h.hostName === state.assignedHub);
if (!hub)
  throw new Error(`${state.assignedHub} is not a built-in hub of this Provisio; use that hub's connection string.`);
const client = iothub.Client.fromConnectionString(hub.connectionString);
(client as unknown as { _restApiClient: { setOptions(o: unknown): void } })._restApiClient.setOptions({
  http: { agent },
});
const { result } = await client.invokeDeviceMethod(state.deviceId as string, {
  methodName: "reprovision",
  payload: { toHub },
  responseTimeoutInSeconds: 30,
  connectTimeoutInSeconds: 10,
});
console.log(`the device answered ${JSON.stringify(result)}`);
