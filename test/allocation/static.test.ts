// Static configuration (behaviors.md §4.4): the enrollment's single hub.
import assert from "node:assert/strict";
import { test } from "node:test";
import { staticHub } from "../../src/allocation/static.js";

test("static selects the only hub in iotHubs", () => {
  assert.deepEqual(staticHub({ iotHubs: ["hub-a.azure-devices.net"] }), { ok: true, hub: "hub-a.azure-devices.net" });
});

test("the legacy iotHubHostName wins over iotHubs", () => {
  assert.deepEqual(staticHub({ iotHubHostName: "legacy.azure-devices.net", iotHubs: ["a", "b"] }), {
    ok: true,
    hub: "legacy.azure-devices.net",
  });
  assert.deepEqual(staticHub({ iotHubHostName: "legacy.azure-devices.net" }), {
    ok: true,
    hub: "legacy.azure-devices.net",
  });
});

test("static with no hub fails with a reason", () => {
  for (const enrollment of [{}, { iotHubs: [] }, { iotHubHostName: "" }]) {
    const out = staticHub(enrollment);
    assert.equal(out.ok, false);
    assert.match(out.ok ? "" : out.reason, /exactly one IoT hub.*lists none/);
  }
});

test("static with several hubs fails with a reason", () => {
  const out = staticHub({ iotHubs: ["a", "b"] });
  assert.equal(out.ok, false);
  assert.match(out.ok ? "" : out.reason, /exactly one IoT hub.*lists 2/);
});
