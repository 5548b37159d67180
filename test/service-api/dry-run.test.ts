// POST /registrations/{id}/dryRun: what a registration would do now, with no side effects.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { ProvisioningServiceClient } from "azure-iot-provisioning-service";
import type { EnrollmentGroup, IndividualEnrollment } from "azure-iot-provisioning-service/dist/interfaces.js";
import { type ExampleWebhook, startExampleWebhook } from "../../examples/custom-allocation-webhook/server.js";
import { deriveKey, httpTransport, registerWithKey } from "../support/device-clients.js";
import { deviceToken } from "../support/enrollments.js";
import { hubOf, registryClient } from "../support/hub-clients.js";
import { addPolicy, call } from "../support/management.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { serviceClient } from "../support/service-client.js";

interface Report {
  enrollment: { kind: string; registrationId?: string; enrollmentGroupId?: string } | null;
  attestation: { verdict: string; reason?: string };
  allocation?: { policy: string; chosenHub: string | null; deviceLocation: string | null; reason?: string };
  webhook?: { request: { deviceRuntimeContext: { registrationId: string } }; calls?: unknown[] };
  reprovision?: { current: unknown; substatus: string; twin: string; hub: string };
  twin?: unknown;
  outcome?: string;
}

describe("dry run", () => {
  let p: ProvisioProcess;
  let svc: ProvisioningServiceClient;
  let webhook: ExampleWebhook;
  const dry = async (id: string, body: unknown = {}) => {
    const r = await call(p, "POST", `/registrations/${id}/dryRun`, { body: JSON.stringify(body) });
    assert.equal(r.status, 200, r.text);
    return r.json() as Report;
  };
  const token = (id: string, key: string) => deviceToken(p, id, key);

  before(async () => {
    p = await startProvisio({ args: ["--hubs", "2"] });
    svc = serviceClient(p);
    webhook = await startExampleWebhook({ toasterMatch: "hub-2", heatpumpMatch: "hub-1" });
  });
  after(async () => {
    await webhook.close();
    await p.dispose();
  });

  test("an individual enrollment: the allocation, twin and action are shown and nothing happens", async () => {
    const hub2 = hubOf(p, 1).hostName;
    const key =
      (
        await svc.createOrUpdateIndividualEnrollment({
          registrationId: "dry-dev",
          attestation: { type: "symmetricKey" },
          allocationPolicy: "static",
          iotHubs: [hub2],
          initialTwin: { tags: { dry: true } },
        } as unknown as IndividualEnrollment)
      ).responseBody.attestation.symmetricKey?.primaryKey ?? "";
    const report = await dry("dry-dev");
    assert.equal(report.attestation.verdict, "notChecked");
    assert.equal(report.enrollment?.kind, "individual");
    assert.equal(report.allocation?.chosenHub, hub2);
    assert.equal(report.reprovision?.substatus, "initialAssignment");
    assert.deepEqual(report.twin, { tags: { dry: true } });
    assert.equal(report.outcome, "assigned");
    await assert.rejects(svc.getDeviceRegistrationState("dry-dev"), /Not found/, "no registration state was written");
    await assert.rejects(
      registryClient(p, hubOf(p, 1).connectionString).get("dry-dev"),
      (e: Error) => e.name === "DeviceNotFoundError",
    );

    assert.equal((await dry("dry-dev", { sasToken: token("dry-dev", key) })).attestation.verdict, "ok");
    const refused = await dry("dry-dev", { sasToken: token("dry-dev", Buffer.alloc(32, 2).toString("base64")) });
    assert.equal(refused.attestation.verdict, "refused");
    assert.match(refused.attestation.reason ?? "", /signature/);

    await registerWithKey(p, httpTransport(p), "dry-dev", key);
    const again = await dry("dry-dev");
    assert.equal(again.reprovision?.substatus, "reprovisionedToInitialAssignment");
    assert.equal(again.reprovision?.twin, "keep");
  });

  test("a group device found by its key, with lowest-latency inputs shown", async () => {
    const put = await call(p, "PUT", "/provisioningServices/provisio", {
      body: JSON.stringify({ properties: { deviceLocationRules: [{ ipMask: "10.9.0.0/16", location: "eastus" }] } }),
    });
    assert.equal(put.status, 200, put.text);
    const groupKey =
      (
        await svc.createOrUpdateEnrollmentGroup({
          enrollmentGroupId: "dry-group",
          attestation: { type: "symmetricKey" },
          allocationPolicy: "geoLatency",
        } as unknown as EnrollmentGroup)
      ).responseBody.attestation.symmetricKey?.primaryKey ?? "";
    const report = await dry("dry-member", {
      sasToken: token("dry-member", deriveKey(groupKey, "dry-member")),
      sourceAddress: "10.9.1.2",
    });
    assert.equal(report.enrollment?.enrollmentGroupId, "dry-group");
    assert.equal(report.allocation?.policy, "geoLatency");
    assert.equal(report.allocation?.deviceLocation, "eastus");
    assert.ok(report.allocation?.chosenHub);
  });

  test("custom allocation: the webhook request is shown, and with callWebhook its answer decides", async () => {
    await svc.createOrUpdateEnrollmentGroup({
      enrollmentGroupId: "dry-custom",
      attestation: { type: "symmetricKey" },
      allocationPolicy: "custom",
      customAllocationDefinition: { webhookUrl: webhook.url, apiVersion: "2019-03-31" },
    } as unknown as EnrollmentGroup);
    const shown = await dry("lab-contoso-tstrsd-1", { enrollmentGroupId: "dry-custom" });
    assert.equal(shown.webhook?.request.deviceRuntimeContext.registrationId, "lab-contoso-tstrsd-1");
    assert.equal(shown.outcome, "webhookDecides");
    assert.equal(webhook.requests.length, 0, "the webhook was not called");

    const called = await dry("lab-contoso-tstrsd-1", { enrollmentGroupId: "dry-custom", callWebhook: true });
    assert.equal(called.allocation?.chosenHub, hubOf(p, 1).hostName);
    assert.equal(webhook.requests.length, 1);
  });

  test("a dry run needs EnrollmentRead", async () => {
    const cs = await addPolicy(p, "registrations-only", "RegistrationStatusRead");
    const r = await call(p, "POST", "/registrations/dry-dev/dryRun", { body: "{}", connectionString: cs });
    assert.equal(r.status, 401);
    assert.match(r.text, /EnrollmentRead/);
  });
});
