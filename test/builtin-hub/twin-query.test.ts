// The built-in hub's twin query subset (builtin-hub/twin-query.ts), from query texts.
import assert from "node:assert/strict";
import { test } from "node:test";
import { matchesQuery, parseTwinQuery, projectTwin } from "../../src/builtin-hub/twin-query.js";

const twin = {
  deviceId: "leaf",
  deviceScope: "ms-azure-iot-edge://gw-1",
  parentScopes: ["ms-azure-iot-edge://gw-1"],
  capabilities: { iotEdge: false },
  tags: { fleet: "even", floor: 3 },
};

test("SELECT * with equality conditions on nested paths, booleans and numbers", () => {
  const q = parseTwinQuery("select * from devices where capabilities.iotEdge=false and tags.floor = 3");
  assert.equal(q.select, undefined);
  assert.ok(matchesQuery(q, twin));
  assert.equal(projectTwin(q, twin), twin);
  assert.ok(!matchesQuery(parseTwinQuery("SELECT * FROM devices WHERE tags.fleet = 'odd'"), twin));
  assert.ok(matchesQuery(parseTwinQuery("SELECT * FROM devices WHERE tags.missing = null"), twin));
});

test("ARRAY_CONTAINS and a projection: how az iot hub device-identity children list asks", () => {
  const q = parseTwinQuery(
    "select deviceId from devices where array_contains(parentScopes, 'ms-azure-iot-edge://gw-1')",
  );
  assert.ok(matchesQuery(q, twin));
  assert.deepEqual(projectTwin(q, twin), { deviceId: "leaf" });
  assert.ok(!matchesQuery(parseTwinQuery("SELECT * FROM devices WHERE ARRAY_CONTAINS(parentScopes, 'x')"), twin));
  assert.ok(!matchesQuery(parseTwinQuery("SELECT * FROM devices WHERE ARRAY_CONTAINS(tags, 'even')"), twin));
  assert.deepEqual(projectTwin(parseTwinQuery("SELECT deviceId, tags.fleet FROM devices"), twin), {
    deviceId: "leaf",
    fleet: "even",
  });
});

test("comparisons, IN, AND/OR/NOT with parentheses, and the functions fleets use", () => {
  const twin2 = {
    deviceId: "sensor-17",
    status: "enabled",
    tags: { site: "berlin", floor: 3, firmware: "2.1.0", zones: ["a", "b"], nothing: null },
    properties: { reported: { temperature: 21.5 } },
  };
  const yes = (where: string) =>
    assert.ok(matchesQuery(parseTwinQuery(`SELECT * FROM devices WHERE ${where}`), twin2), where);
  const no = (where: string) =>
    assert.ok(!matchesQuery(parseTwinQuery(`SELECT * FROM devices WHERE ${where}`), twin2), where);
  yes("tags.floor > 2");
  yes("tags.floor >= 3 AND tags.floor <= 3");
  no("tags.floor < 3");
  yes("properties.reported.temperature > 20.0");
  yes("tags.site != 'munich'");
  yes("tags.site <> 'munich'");
  no("tags.absent != 'x'"); // an absent property compares false, as on IoT Hub
  no("tags.site > 3"); // different types never compare
  yes("tags.firmware < '2.2'");
  yes("tags.site = 'munich' OR tags.site = \"berlin\"");
  no("tags.site = 'munich' OR (tags.floor = 3 AND status = 'disabled')");
  yes("NOT (tags.site = 'munich')");
  yes("deviceId IN ['sensor-17', 'sensor-18']");
  no("deviceId NIN ['sensor-17']");
  yes("IS_DEFINED(tags.site) AND NOT IS_DEFINED(tags.region)");
  yes("IS_NULL(tags.nothing)");
  yes("STARTSWITH(deviceId, 'sensor-') AND ENDSWITH(tags.firmware, '.0')");
  yes("ARRAY_CONTAINS(tags.zones, 'b')");
  no("ARRAY_CONTAINS(tags.zones, 'c')");
});

test("FROM devices.modules", () => {
  assert.equal(parseTwinQuery("SELECT * FROM devices.modules WHERE moduleId = 'filter'").from, "modules");
  assert.equal(parseTwinQuery("SELECT * FROM devices").from, undefined);
});

test("SELECT COUNT() [AS name]", () => {
  assert.equal(parseTwinQuery("SELECT COUNT() FROM devices").count, "numberOfDevices");
  const q = parseTwinQuery("select count() as total from devices where tags.floor = 3");
  assert.equal(q.count, "total");
  assert.ok(matchesQuery(q, twin));
});

test("anything else is refused with ArgumentInvalid and says where, not half-understood", () => {
  for (const [text, where] of [
    ["SELECT deviceId FROM devices GROUP BY x", /Unexpected at 'GROUP'/],
    ["SELECT * FROM devices.jobs", /Only FROM devices and FROM devices.modules are supported, not 'devices.jobs'/],
    ["SELECT * FROM devices WHERE tags.floor ~ 3", /Cannot read the query at '~ 3'/],
    ["SELECT * FROM devices WHERE (tags.a = 1", /Expected '\)' at the end of the query/],
    ["SELECT * FROM devices WHERE STARTSWITH(deviceId, 3)", /STARTSWITH takes a 'text' value/],
    ["SELECT * FROM devices WHERE tags.a =", /Expected a value/],
    ["DELETE FROM devices", /Use SELECT/],
  ] as const) {
    assert.throws(
      () => parseTwinQuery(text),
      (err: Error & { errorCode?: number }) => err.errorCode === 400004 && where.test(err.message),
      text,
    );
  }
});
