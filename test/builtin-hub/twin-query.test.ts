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

test("anything else is refused with ArgumentInvalid, not half-understood", () => {
  for (const text of [
    "SELECT deviceId FROM devices GROUP BY x",
    "SELECT * FROM devices.modules",
    "SELECT * FROM devices WHERE tags.floor > 3",
    "SELECT * FROM devices WHERE tags.a = 1 OR tags.b = 2",
    "SELECT COUNT() FROM devices",
    "DELETE FROM devices",
  ]) {
    assert.throws(
      () => parseTwinQuery(text),
      (err: Error & { errorCode?: number }) => err.errorCode === 400004,
      text,
    );
  }
});
