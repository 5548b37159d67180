// Lowest latency (behaviors.md §4.3): the device's location comes from the first matching rule; hubs there win;
// ties and "no estimate" fall back to the weighted hash.
import assert from "node:assert/strict";
import { test } from "node:test";
import { geoLatency } from "../../src/allocation/geo-latency.js";
import { weightedHash } from "../../src/allocation/hashed.js";
import { compileLocationRules } from "../../src/allocation/location-rules.js";

const WEST = "contoso-west-hub.azure-devices.net";
const EAST = "contoso-east-hub.azure-devices.net";

// Seed 000: two hubs in two regions and rules placing 10.1/16 in West US and 10.2/16 in East US.
const seedHubs = [
  { name: WEST, location: "westus", allocationWeight: 1 },
  { name: EAST, location: "eastus", allocationWeight: 1 },
];
const seedLocate = compileLocationRules([
  { ipMask: "10.1.0.0/16", location: "West US" },
  { ipMask: "10.2.0.0/16", location: "eastus" },
]);

test("seed 000: contoso-simdevice-west from 10.1.2.3 lands on the west hub", () => {
  assert.equal(geoLatency("contoso-simdevice-west", "10.1.2.3", seedHubs, seedLocate), WEST);
  assert.equal(geoLatency("contoso-simdevice-west", "::ffff:10.1.2.3", seedHubs, seedLocate), WEST);
});

test("seed 000: contoso-simdevice-east from 10.2.3.4 lands on the east hub", () => {
  assert.equal(geoLatency("contoso-simdevice-east", "10.2.3.4", seedHubs, seedLocate), EAST);
});

test("seed 000: the region decides, not the hash", () => {
  for (let i = 0; i < 200; i++) {
    assert.equal(geoLatency(`device-${i}`, "10.1.9.9", seedHubs, seedLocate), WEST);
    assert.equal(geoLatency(`device-${i}`, "10.2.9.9", seedHubs, seedLocate), EAST);
  }
});

test("seed 000: an unmatched address falls back to the weighted hash over both hubs", () => {
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const id = `device-${i}`;
    const hub = geoLatency(id, "192.0.2.1", seedHubs, seedLocate);
    assert.equal(hub, weightedHash(id, seedHubs));
    assert.equal(geoLatency(id, "2001:db8::1", seedHubs, seedLocate), hub);
    if (hub) seen.add(hub);
  }
  assert.deepEqual([...seen].sort(), [EAST, WEST]);
});

test("a located region with no candidate hub ties every candidate", () => {
  const locate = compileLocationRules([{ ipMask: "0.0.0.0/0", location: "japaneast" }]);
  for (let i = 0; i < 100; i++) {
    const id = `device-${i}`;
    assert.equal(geoLatency(id, "10.1.2.3", seedHubs, locate), weightedHash(id, seedHubs));
  }
});

test("ties in one region are hashed among that region's hubs only", () => {
  const hubs = [
    { name: "west-1.azure-devices.net", location: "westus", allocationWeight: 1 },
    { name: "east-1.azure-devices.net", location: "eastus", allocationWeight: 1 },
    { name: "west-2.azure-devices.net", location: "West US", allocationWeight: 3 },
  ];
  const westOnly = [hubs[0], hubs[2]] as typeof hubs;
  const seen = new Set<string>();
  for (let i = 0; i < 400; i++) {
    const id = `device-${i}`;
    const hub = geoLatency(id, "10.1.2.3", hubs, seedLocate);
    assert.equal(hub, weightedHash(id, westOnly));
    if (hub) seen.add(hub);
  }
  assert.deepEqual([...seen].sort(), ["west-1.azure-devices.net", "west-2.azure-devices.net"]);
});

test("hub locations compare case- and space-insensitively; locate results are normalised", () => {
  const hubs = [
    { name: WEST, location: "West US", allocationWeight: 1 },
    { name: EAST, location: "EASTUS", allocationWeight: 1 },
  ];
  assert.equal(geoLatency("d", "10.1.2.3", hubs, seedLocate), WEST);
  assert.equal(
    geoLatency("d", "anything", seedHubs, () => "East US"),
    EAST,
  );
});

test("empty and single candidate lists", () => {
  assert.equal(geoLatency("d", "10.1.2.3", [], seedLocate), undefined);
  assert.equal(geoLatency("d", "10.1.2.3", [seedHubs[1] as (typeof seedHubs)[number]], seedLocate), EAST);
});
