// DPS's resource logs (behaviors.md §11): one JSON line per device operation and per service
// operation, with DPS's columns, in the file --diagnostic-log names.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { ProvisioningServiceClient } from "azure-iot-provisioning-service";
import { httpTransport, mqttTransport, registerWithKey } from "../support/device-clients.js";
import { enrollIndividual } from "../support/enrollments.js";
import { call } from "../support/management.js";
import { newDataDir, type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { serviceClient } from "../support/service-client.js";

interface Entry {
  Category: string;
  OperationName: string;
  ResultType: string;
  ResultSignature: string;
  ResultDescription: string;
  DurationMs: string;
  CallerIpAddress: string;
  CorrelationId: string;
  Level: string;
  Resource: string;
  TimeGenerated: string;
  properties: { id: string; type: string; protocol?: string };
}

describe("diagnostic logs", () => {
  let p: ProvisioProcess;
  let svc: ProvisioningServiceClient;
  let file: string;
  before(async () => {
    const dataDir = newDataDir();
    file = join(dataDir, "diagnostics.jsonl");
    p = await startProvisio({ dataDir, args: ["--diagnostic-log", file] });
    svc = serviceClient(p);
  });
  after(async () => {
    await p.dispose();
  });

  /** The entries so far, once at least `n` are written (the file is appended asynchronously). */
  const entries = async (n: number): Promise<Entry[]> => {
    for (let i = 0; i < 100; i++) {
      const lines = existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : [];
      if (lines.length >= n) return lines.map((l) => JSON.parse(l) as Entry);
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.fail(`fewer than ${n} diagnostic lines`);
  };

  test("device and service operations each write one line with DPS's columns", async () => {
    const key = await enrollIndividual(svc, "diag-dev");
    await svc.getIndividualEnrollment("diag-dev");
    assert.equal((await registerWithKey(p, httpTransport(p), "diag-dev", key)).status, "assigned");
    const { transport, host } = mqttTransport(p);
    await assert.rejects(
      registerWithKey(p, transport, "diag-dev", Buffer.alloc(32, 1).toString("base64"), undefined, host),
    );
    await svc.deleteIndividualEnrollment("diag-dev");

    const all = await entries(5);
    const service = all.filter((e) => e.Category === "ServiceOperations");
    assert.deepEqual(
      service.map((e) => [e.OperationName, e.ResultType, e.properties.type, e.properties.id]),
      [
        ["Upsert", "Success", "IndividualEnrollment", "diag-dev"],
        ["Get", "Success", "IndividualEnrollment", "diag-dev"],
        ["Delete", "Success", "IndividualEnrollment", "diag-dev"],
      ],
    );
    const device = all.filter((e) => e.Category === "DeviceOperations");
    const assigned = device.find((e) => e.properties.protocol === "Http");
    const refused = device.find((e) => e.properties.protocol === "Mqtt");
    assert.ok(assigned && refused, JSON.stringify(device));
    assert.equal(assigned.OperationName, "RegisterDevice");
    assert.equal(assigned.ResultType, "Success");
    assert.equal(assigned.ResultSignature, "200");
    assert.equal(assigned.Level, "Information");
    // Over MQTT the device attests when its session opens: that is the refused operation.
    assert.equal(refused.OperationName, "AttestationAttempt");
    assert.equal(refused.ResultType, "ClientError");
    assert.equal(refused.ResultSignature, "401");
    assert.equal(refused.Level, "Warning");
    assert.match(refused.ResultDescription, /signature does not verify/);
    for (const e of all) {
      assert.equal(e.Resource, "PROVISIO");
      assert.equal(e.CallerIpAddress, "127.0.0.XXX", "the caller's address, masked");
      assert.match(e.DurationMs, /^\d+$/);
      assert.ok(!Number.isNaN(Date.parse(e.TimeGenerated)));
      assert.ok(e.CorrelationId.length > 0);
    }
  });

  test("the recent lines are readable through the service API, filtered", async () => {
    const read = async (query: string) => {
      const r = await call(p, "GET", `/diagnostics?api-version=2021-10-01${query}`);
      assert.equal(r.status, 200, r.text);
      return r.json() as Entry[];
    };
    const device = await read("&category=DeviceOperations&id=DIAG-DEV");
    assert.deepEqual(
      device.map((e) => [e.OperationName, e.ResultType]),
      [
        ["RegisterDevice", "Success"],
        ["AttestationAttempt", "ClientError"],
      ],
    );
    assert.deepEqual(
      (await read("&result=ClientError")).map((e) => e.properties.protocol),
      ["Mqtt"],
    );
    assert.equal((await read(`&since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`)).length, 0);
    assert.ok((await read("&category=ServiceOperations")).length >= 3);
    const bad = await call(p, "GET", "/diagnostics?since=yesterday");
    assert.equal(bad.status, 400);
    assert.equal((bad.json() as { errorCode: number }).errorCode, 400013);
    assert.equal((await call(p, "GET", "/diagnostics", { auth: null })).status, 401);
  });
});
