// DPS's resource log columns from their inputs (observability/diagnostic-log.ts), and the names
// service API requests get (service-api/service-operations.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseRequestPath } from "../../src/http/request-path.js";
import { type DiagnosticFilter, diagnosticEntry, maskIp, RecentLines } from "../../src/observability/diagnostic-log.js";
import { serviceOperation } from "../../src/service-api/service-operations.js";

test("caller addresses are masked as DPS masks them", () => {
  assert.equal(maskIp("24.18.226.17"), "24.18.226.XXX");
  assert.equal(maskIp("::ffff:10.1.2.3"), "10.1.2.XXX");
  assert.equal(maskIp("2001:db8:85a3:1:2:3:4:5"), "2001:db8:85a3:1:XXXX");
  assert.equal(maskIp(""), "");
});

test("an entry: result type and level from the status, duration, resource in capitals", () => {
  const e = diagnosticEntry(
    {
      category: "DeviceOperations",
      operation: "RegisterDevice",
      status: 429,
      description: "Too many requests",
      startedAt: 1_000,
      callerIp: "10.0.0.7",
      correlationId: "c-1",
      service: "plant-a",
      id: "dev-1",
      type: "Registration",
      protocol: "Amqp",
    },
    1_250,
  );
  assert.deepEqual(
    { ...e, TimeGenerated: undefined },
    {
      Category: "DeviceOperations",
      OperationName: "RegisterDevice",
      ResultType: "ClientError",
      ResultSignature: "429",
      ResultDescription: "Too many requests",
      DurationMs: "250",
      CallerIpAddress: "10.0.0.XXX",
      CorrelationId: "c-1",
      Level: "Warning",
      Resource: "PLANT-A",
      TimeGenerated: undefined,
      properties: { id: "dev-1", type: "Registration", protocol: "Amqp" },
    },
  );
  assert.equal(diagnosticEntry({ ...baseEvent(), status: 500 }).Level, "Error");
  assert.equal(diagnosticEntry({ ...baseEvent(), status: 202 }).ResultType, "Success");
});

const baseEvent = () => ({
  category: "ServiceOperations" as const,
  operation: "Get",
  status: 200,
  startedAt: Date.now(),
  callerIp: "127.0.0.1",
  service: "provisio",
  id: "",
  type: "IndividualEnrollment",
});

test("service API requests are named Get, Upsert, Delete, Query or Bulk, with what they are about", () => {
  const op = (method: string, url: string) => serviceOperation(method, parseRequestPath(url));
  assert.deepEqual(op("GET", "/enrollments/dev-1?api-version=2021-10-01"), {
    operation: "Get",
    id: "dev-1",
    type: "IndividualEnrollment",
  });
  assert.deepEqual(op("PUT", "/enrollmentGroups/g-1"), { operation: "Upsert", id: "g-1", type: "EnrollmentGroup" });
  assert.deepEqual(op("DELETE", "/registrations/dev-1"), { operation: "Delete", id: "dev-1", type: "Registration" });
  assert.deepEqual(op("POST", "/enrollments/query"), { operation: "Query", id: "", type: "IndividualEnrollment" });
  assert.deepEqual(op("POST", "/enrollments"), { operation: "Bulk", id: "", type: "IndividualEnrollment" });
});

test("the recent lines: a bounded ring, filtered by service, category, id, result and time", () => {
  const recent = new RecentLines(3);
  const at = (ms: number, over: Partial<Parameters<typeof diagnosticEntry>[0]>) =>
    diagnosticEntry({ ...baseEvent(), startedAt: ms, ...over }, ms);
  recent.push(at(1_000, { id: "a" }));
  recent.push(at(2_000, { id: "b", status: 404 }));
  recent.push(at(3_000, { id: "B", category: "DeviceOperations" }));
  recent.push(at(4_000, { id: "c", service: "other" }));
  const ids = (f: Partial<DiagnosticFilter>) =>
    recent.matching({ service: "provisio", ...f }).map((e) => e.properties.id);
  assert.deepEqual(ids({}), ["b", "B"], "the oldest line fell out; another service's line is not shown");
  assert.deepEqual(ids({ id: "b" }), ["b", "B"]);
  assert.deepEqual(ids({ category: "deviceoperations" }), ["B"]);
  assert.deepEqual(ids({ result: "ClientError" }), ["b"]);
  assert.deepEqual(ids({ since: new Date(2_500).toISOString() }), ["B"]);
});
