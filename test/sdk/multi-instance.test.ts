// Several provisioning service instances behind one device endpoint, told apart by ID scope
// (issue: foundation; behaviors.md §1.4).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import provisioningDevice from "azure-iot-provisioning-device";
import type { IndividualEnrollment } from "azure-iot-provisioning-service/dist/interfaces.js";
import symmetricKey from "azure-iot-security-symmetric-key";
import { formatConnectionString } from "../../src/domain/connection-string.js";
import { httpTransport } from "../support/device-clients.js";
import { hubOf } from "../support/hub-clients.js";
import { call } from "../support/management.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { serviceClient } from "../support/service-client.js";

const { ProvisioningDeviceClient } = provisioningDevice;
const { SymmetricKeySecurityClient } = symmetricKey;

let p: ProvisioProcess;
before(async () => {
  p = await startProvisio({ args: ["--hubs", "2"] });
});
after(async () => {
  await p.dispose();
});

test("a second instance, on the same device endpoint, provisions its own devices by its own ID scope", async () => {
  const hub2 = hubOf(p, 1);
  const created = await call(p, "PUT", "/provisioningServices/tenant-b", {
    body: JSON.stringify({
      properties: { iotHubs: [{ connectionString: hub2.connectionString, location: "local" }] },
    }),
  });
  assert.equal(created.status, 201, created.text);
  const scopeB = (created.json() as { properties: { idScope: string } }).properties.idScope;
  const keys = (await call(p, "POST", "/provisioningServices/tenant-b/listkeys")).json() as {
    value: { keyName: string; primaryKey: string }[];
  };
  const owner = keys.value[0];
  assert.ok(owner);
  const svcB = serviceClient(
    p,
    formatConnectionString({ hostName: "tenant-b.localhost", keyName: owner.keyName, key: owner.primaryKey }),
    { resolveTo: "127.0.0.1" },
  );
  const key =
    (
      await svcB.createOrUpdateIndividualEnrollment({
        registrationId: "tenant-b-dev",
        attestation: { type: "symmetricKey" },
      } as IndividualEnrollment)
    ).responseBody.attestation.symmetricKey?.primaryKey ?? "";

  type Create = typeof ProvisioningDeviceClient.create;
  const register = (scope: string): Promise<unknown> =>
    ProvisioningDeviceClient.create(
      "localhost",
      scope,
      httpTransport(p) as unknown as Parameters<Create>[2],
      new SymmetricKeySecurityClient("tenant-b-dev", key) as unknown as Parameters<Create>[3],
    ).register() as Promise<unknown>;

  const result = (await register(scopeB)) as unknown as { assignedHub: string; status: string };
  assert.equal(result.status, "assigned");
  assert.equal(result.assignedHub, hub2.hostName, "tenant-b's only linked hub");
  // The primary instance knows nothing of this device.
  await assert.rejects(register(p.info.idScope), (e: Error) => e.name === "UnauthorizedError");
  await assert.rejects(serviceClient(p).getDeviceRegistrationState("tenant-b-dev"), /Not found/);
});
