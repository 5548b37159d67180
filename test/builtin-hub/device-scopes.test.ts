// IoT Edge scopes of built-in hub identities (builtin-hub/device-scopes.ts), from plain records.
import assert from "node:assert/strict";
import { test } from "node:test";
import { deviceOfScope, edgeScope, scopesFromBody, scopesOf } from "../../src/builtin-hub/device-scopes.js";
import type { DeviceIdentity } from "../../src/domain/hub.js";
import { NEVER } from "../../src/domain/hub.js";

const identity = (deviceId: string, iotEdge: boolean, extra: Partial<DeviceIdentity> = {}): DeviceIdentity => ({
  deviceId,
  generationId: "638000000000000001",
  etag: "MA==",
  status: "enabled",
  statusReason: null,
  statusUpdatedTime: NEVER,
  connectionState: "Disconnected",
  connectionStateUpdatedTime: NEVER,
  lastActivityTime: NEVER,
  cloudToDeviceMessageCount: 0,
  authentication: {
    type: "sas",
    symmetricKey: { primaryKey: null, secondaryKey: null },
    x509Thumbprint: { primaryThumbprint: null, secondaryThumbprint: null },
  },
  capabilities: { iotEdge },
  ...extra,
});
const PARENT = "ms-azure-iot-edge://gw-1-637121074930370650";

test("an edge scope names its device: the part between the prefix and the last '-'", () => {
  assert.equal(edgeScope("gw-1", "637121074930370650"), PARENT);
  assert.equal(deviceOfScope(PARENT), "gw-1");
  assert.equal(deviceOfScope("gw-1-637"), undefined);
  assert.equal(deviceOfScope("ms-azure-iot-edge://nodash"), undefined);
});

test("records kept before relations existed read as IoT Hub shows them", () => {
  assert.deepEqual(scopesOf(identity("edge", true)), {
    deviceScope: "ms-azure-iot-edge://edge-638000000000000001",
    parentScopes: [],
  });
  assert.deepEqual(scopesOf(identity("leaf", false)), { deviceScope: null, parentScopes: [] });
  assert.deepEqual(scopesOf(identity("leaf", false, { deviceScope: PARENT })), {
    deviceScope: PARENT,
    parentScopes: [PARENT],
  });
});

test("an edge device's own scope is the hub's; its parent comes from parentScopes", () => {
  const ids = { deviceId: "edge", generationId: "1", iotEdge: true };
  assert.deepEqual(scopesFromBody({ deviceScope: "ms-azure-iot-edge://someone-else-2" }, ids, undefined), {
    deviceScope: "ms-azure-iot-edge://edge-1",
    parentScopes: [],
  });
  assert.deepEqual(scopesFromBody({ parentScopes: [PARENT] }, ids, undefined).parentScopes, [PARENT]);
  assert.throws(() => scopesFromBody({ parentScopes: [PARENT, PARENT] }, ids, undefined), /at most one/);
  assert.throws(() => scopesFromBody({ parentScopes: ["ms-azure-iot-edge://edge-1"] }, ids, undefined), /own parent/);
});

test("a leaf's parent is its deviceScope; parentScopes mirrors it; what the body leaves out is kept", () => {
  const ids = { deviceId: "leaf", generationId: "1", iotEdge: false };
  assert.deepEqual(scopesFromBody({ deviceScope: PARENT, parentScopes: ["ignored"] }, ids, undefined), {
    deviceScope: PARENT,
    parentScopes: [PARENT],
  });
  const child = identity("leaf", false, { deviceScope: PARENT, parentScopes: [PARENT] });
  assert.deepEqual(scopesFromBody({}, ids, child), { deviceScope: PARENT, parentScopes: [PARENT] });
  assert.deepEqual(scopesFromBody({ deviceScope: "" }, ids, child), { deviceScope: null, parentScopes: [] });
  assert.throws(() => scopesFromBody({ deviceScope: 5 }, ids, undefined), /deviceScope/);
});

test("turning edge into leaf and back keeps the parent and drops the former own scope", () => {
  const edge = identity("dev", true, {
    deviceScope: "ms-azure-iot-edge://dev-638000000000000001",
    parentScopes: [PARENT],
  });
  const asLeaf = scopesFromBody(
    { deviceScope: "ms-azure-iot-edge://dev-638000000000000001" },
    { deviceId: "dev", generationId: "638000000000000001", iotEdge: false },
    edge,
  );
  assert.deepEqual(asLeaf, { deviceScope: null, parentScopes: [] });
  const kept = scopesFromBody({}, { deviceId: "dev", generationId: "638000000000000001", iotEdge: false }, edge);
  assert.deepEqual(kept, { deviceScope: PARENT, parentScopes: [PARENT] });
  const leaf = identity("dev", false, { deviceScope: PARENT, parentScopes: [PARENT] });
  assert.deepEqual(scopesFromBody({}, { deviceId: "dev", generationId: "638000000000000001", iotEdge: true }, leaf), {
    deviceScope: "ms-azure-iot-edge://dev-638000000000000001",
    parentScopes: [PARENT],
  });
});
