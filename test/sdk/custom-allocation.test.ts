// Custom allocation end to end with the real device SDK (behaviors.md §4.5, seed 003): the
// example webhook sends toasters to one built-in hub and heat pumps to the other; unknown types
// fail with the webhook's message; payloads travel both ways; failures never hang.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import type { ProvisioningServiceClient } from "azure-iot-provisioning-service";
import type { EnrollmentGroup } from "azure-iot-provisioning-service/dist/interfaces.js";
import { type ExampleWebhook, startExampleWebhook } from "../../examples/custom-allocation-webhook/server.js";
import type { RegistrationAttempt } from "../../src/domain/attempt.js";
import { ADMITTED_STEPS } from "../support/attempts.js";
import { deriveKey, httpTransport, registerWithKey } from "../support/device-clients.js";
import { hubOf, registryClient } from "../support/hub-clients.js";
import { call } from "../support/management.js";
import { scrape } from "../support/metrics.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { serviceClient } from "../support/service-client.js";

interface WebhookCallWire {
  url: string;
  status?: number;
  error?: string;
  durationMs: number;
  request: { deviceRuntimeContext: { registrationId: string; payload?: unknown }; linkedHubs: string[] };
}

describe("custom allocation with a webhook", () => {
  let p: ProvisioProcess;
  let svc: ProvisioningServiceClient;
  let webhook: ExampleWebhook;
  let silent: Server;
  let groupKey: string;

  const customGroup = async (enrollmentGroupId: string, webhookUrl: string, extra: Record<string, unknown> = {}) =>
    (
      await svc.createOrUpdateEnrollmentGroup({
        enrollmentGroupId,
        attestation: { type: "symmetricKey" },
        allocationPolicy: "custom",
        customAllocationDefinition: { webhookUrl, apiVersion: "2019-03-31" },
        ...extra,
      } as unknown as EnrollmentGroup)
    ).responseBody.attestation.symmetricKey?.primaryKey ?? "";

  before(async () => {
    // Bounded webhook failures: 1 s timeout, one retry.
    p = await startProvisio({
      args: ["--hubs", "2"],
      env: { PROVISIO_WEBHOOK_TIMEOUT_MS: "1000", PROVISIO_WEBHOOK_RETRIES: "1" },
    });
    svc = serviceClient(p);
    webhook = await startExampleWebhook({ toasterMatch: "hub-1", heatpumpMatch: "hub-2", code: "s3cret" });
    silent = createServer(() => undefined); // accepts and never answers
    silent.listen(0, "127.0.0.1");
    await once(silent, "listening");
    groupKey = await customGroup("contoso-custom-allocated-devices", `${webhook.url}?code=s3cret`);
  });
  after(async () => {
    silent.closeAllConnections();
    silent.close();
    await webhook.close();
    await p.dispose();
  });

  test("seed 003: a toaster goes to the toasters hub with the webhook's twin, and payloads travel both ways", async () => {
    const id = "breakroom499-contoso-tstrsd-007";
    const result = await registerWithKey(p, httpTransport(p), id, deriveKey(groupKey, id), { firmware: "12.0.2.5" });
    assert.equal(result.status, "assigned");
    assert.equal(result.assignedHub, hubOf(p, 0).hostName);
    assert.deepEqual(result.payload, { receivedPayload: { firmware: "12.0.2.5" }, allocatedBy: "example" });
    const twin = (await registryClient(p, hubOf(p, 0).connectionString).getTwin(id)).responseBody;
    assert.equal(twin.tags.deviceType, "toaster");
    assert.equal(twin.properties.desired.darknessSetting, "medium");
  });

  test("seed 003: a heat pump goes to the heat pumps hub", async () => {
    const id = "mainbuilding167-contoso-hpsd-088";
    const result = await registerWithKey(p, httpTransport(p), id, deriveKey(groupKey, id));
    assert.equal(result.assignedHub, hubOf(p, 1).hostName);
    assert.equal(
      (await registryClient(p, hubOf(p, 1).connectionString).getTwin(id)).responseBody.tags.deviceType,
      "heatpump",
    );
  });

  test("an unknown device type fails with the webhook's message; the calls are readable through the API", async () => {
    const id = "mainbuilding-contoso-fridge-1";
    await assert.rejects(
      registerWithKey(p, httpTransport(p), id, deriveKey(groupKey, id), { model: "fridge" }),
      (err: Error) => err.name === "ProvisioningRegistrationFailedError",
    );
    const state = (await svc.getDeviceRegistrationState(id)).responseBody;
    assert.equal(state.status, "failed");
    assert.equal(state.errorCode, 400207);
    assert.match(state.errorMessage ?? "", /status code: 400/);
    assert.match(state.errorMessage ?? "", /Unrecognized device registration/);

    const calls = (await call(p, "GET", `/registrations/${id}/webhookCalls`)).json() as WebhookCallWire[];
    assert.equal(calls.length, 1);
    assert.equal(calls[0]?.status, 400);
    assert.match(calls[0]?.url ?? "", /\?\*\*\*\*$/, "the function key is masked");
    assert.equal(calls[0]?.request.deviceRuntimeContext.registrationId, id);
    assert.deepEqual(calls[0]?.request.deviceRuntimeContext.payload, { model: "fridge" });

    // The attempt explains it step by step (issue 22): admitted, then the webhook said no.
    const [attempt] = (await call(p, "GET", `/registrations/${id}/attempts`)).json() as RegistrationAttempt[];
    assert.equal(attempt?.outcome, "failed");
    assert.equal(attempt?.errorCode, 400207);
    assert.deepEqual(
      attempt?.steps.map((s) => `${s.step} ${s.outcome}`),
      [...ADMITTED_STEPS, "allocate failed"],
    );
    const allocate = attempt?.steps.at(-1)?.detail ?? "";
    assert.match(allocate, /^custom among .*: no hub: .*Unrecognized device registration/);
    assert.match(allocate, /webhook answered 400 in \d+ ms/);
  });

  test("a wrong function key is 400209", async () => {
    const key = await customGroup("wrong-code", `${webhook.url}?code=nope`);
    await assert.rejects(
      registerWithKey(p, httpTransport(p), "x-contoso-tstrsd-1", deriveKey(key, "x-contoso-tstrsd-1")),
    );
    assert.equal((await svc.getDeviceRegistrationState("x-contoso-tstrsd-1")).responseBody.errorCode, 400209);
  });

  test("a webhook that never answers gives failed within the timeout, never a hang", async () => {
    const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/api/allocate`;
    const key = await customGroup("silent", url);
    const started = Date.now();
    await assert.rejects(
      registerWithKey(p, httpTransport(p), "slow-contoso-tstrsd-1", deriveKey(key, "slow-contoso-tstrsd-1")),
    );
    assert.ok(Date.now() - started < 20_000);
    const state = (await svc.getDeviceRegistrationState("slow-contoso-tstrsd-1")).responseBody;
    assert.equal(state.errorCode, 400207);
    const calls = (
      await call(p, "GET", "/registrations/slow-contoso-tstrsd-1/webhookCalls")
    ).json() as WebhookCallWire[];
    assert.equal(calls.length, 2, "one call and one retry");
    assert.ok(
      calls.every((c) => c.error),
      "each call records why it failed",
    );
  });

  test("never re-provision keeps the hub but still asks the webhook for new return data", async () => {
    const key = await customGroup("never-custom", `${webhook.url}?code=s3cret`, {
      reprovisionPolicy: { updateHubAssignment: false, migrateDeviceData: false },
    });
    const id = "kitchen-contoso-tstrsd-9";
    const first = await registerWithKey(p, httpTransport(p), id, deriveKey(key, id), { boot: 1 });
    const second = await registerWithKey(p, httpTransport(p), id, deriveKey(key, id), { boot: 2 });
    assert.equal(second.assignedHub, first.assignedHub);
    assert.deepEqual(second.payload, { receivedPayload: { boot: 2 }, allocatedBy: "example" });
    const calls = (await call(p, "GET", `/registrations/${id}/webhookCalls`)).json() as WebhookCallWire[];
    assert.deepEqual(calls[0]?.request.linkedHubs, [first.assignedHub], "only the current hub is offered");
  });

  test("webhook calls are timed in the metrics by status; the one that never answered as error", async () => {
    const { series } = await scrape(p);
    assert.ok((series.get('provisio_webhook_call_duration_seconds_count{status="200"}') ?? 0) >= 3);
    assert.ok((series.get('provisio_webhook_call_duration_seconds_count{status="error"}') ?? 0) >= 2);
  });
});
