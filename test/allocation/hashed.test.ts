// Evenly weighted distribution (behaviors.md §4.2): weighted rendezvous hashing on the lower-cased registration id.
import assert from "node:assert/strict";
import { test } from "node:test";
import { rendezvousScore, unitInterval, weightedHash } from "../../src/allocation/hashed.js";

const ids = Array.from({ length: 4000 }, (_, i) => `device-${i}`);

function shares(hubs: { name: string; allocationWeight: number }[]): Map<string, number> {
  const counts = new Map<string, number>(hubs.map((h) => [h.name, 0]));
  for (const id of ids) {
    const hub = weightedHash(id, hubs);
    assert.ok(hub !== undefined);
    counts.set(hub, (counts.get(hub) ?? 0) + 1);
  }
  return new Map([...counts].map(([k, v]) => [k, v / ids.length]));
}

const near = (actual: number | undefined, expected: number, tolerance: number, label: string) =>
  assert.ok(
    actual !== undefined && Math.abs(actual - expected) <= tolerance,
    `${label}: ${actual} not within ${expected} ± ${tolerance}`,
  );

test("an empty hub list selects nothing; a single hub always wins", () => {
  assert.equal(weightedHash("device-1", []), undefined);
  assert.equal(
    weightedHash("device-1", [{ name: "only.azure-devices.net", allocationWeight: 1 }]),
    "only.azure-devices.net",
  );
});

test("hashed allocation is deterministic", () => {
  const hubs = [
    { name: "hub-a.azure-devices.net", allocationWeight: 1 },
    { name: "hub-b.azure-devices.net", allocationWeight: 1 },
    { name: "hub-c.azure-devices.net", allocationWeight: 1 },
  ];
  for (const id of ids.slice(0, 200))
    assert.equal(
      weightedHash(id, hubs),
      weightedHash(
        id,
        hubs.map((h) => ({ ...h })),
      ),
    );
});

test("hashed allocation is case-insensitive in the registration id and hub names", () => {
  const hubs = [
    { name: "hub-a.azure-devices.net", allocationWeight: 1 },
    { name: "hub-b.azure-devices.net", allocationWeight: 1 },
  ];
  const upper = hubs.map((h) => ({ ...h, name: h.name.toUpperCase() }));
  for (const id of ids.slice(0, 200)) {
    const chosen = weightedHash(id, hubs);
    assert.equal(weightedHash(id.toUpperCase(), hubs), chosen);
    assert.equal(weightedHash(`Device-${id.slice(7)}`, hubs), chosen);
    // The stored spelling of the hub name is returned.
    assert.equal(weightedHash(id, upper), chosen?.toUpperCase());
  }
});

test("hashed allocation does not depend on hub order", () => {
  const hubs = [
    { name: "hub-a.azure-devices.net", allocationWeight: 2 },
    { name: "hub-b.azure-devices.net", allocationWeight: 1 },
    { name: "hub-c.azure-devices.net", allocationWeight: 5 },
  ];
  const reversed = [...hubs].reverse();
  const rotated = [hubs[1], hubs[2], hubs[0]] as typeof hubs;
  for (const id of ids.slice(0, 500)) {
    const chosen = weightedHash(id, hubs);
    assert.equal(weightedHash(id, reversed), chosen);
    assert.equal(weightedHash(id, rotated), chosen);
  }
});

test("weights 1:3 give the lighter hub 25% ± 3% of 4000 ids", () => {
  const s = shares([
    { name: "light.azure-devices.net", allocationWeight: 1 },
    { name: "heavy.azure-devices.net", allocationWeight: 3 },
  ]);
  near(s.get("light.azure-devices.net"), 0.25, 0.03, "light");
  near(s.get("heavy.azure-devices.net"), 0.75, 0.03, "heavy");
});

test("weights 1:1:1 spread 4000 ids evenly ± 3%", () => {
  const s = shares([
    { name: "hub-a.azure-devices.net", allocationWeight: 1 },
    { name: "hub-b.azure-devices.net", allocationWeight: 1 },
    { name: "hub-c.azure-devices.net", allocationWeight: 1 },
  ]);
  for (const [hub, share] of s) near(share, 1 / 3, 0.03, hub);
});

test("equal large weights behave like equal small weights", () => {
  const small = [
    { name: "hub-a.azure-devices.net", allocationWeight: 1 },
    { name: "hub-b.azure-devices.net", allocationWeight: 1 },
  ];
  const large = small.map((h) => ({ ...h, allocationWeight: 1000 }));
  for (const id of ids.slice(0, 300)) assert.equal(weightedHash(id, large), weightedHash(id, small));
});

test("a non-positive or missing weight counts as 1", () => {
  const one = [
    { name: "hub-a.azure-devices.net", allocationWeight: 1 },
    { name: "hub-b.azure-devices.net", allocationWeight: 1 },
  ];
  const odd = [
    { name: "hub-a.azure-devices.net", allocationWeight: 0 },
    { name: "hub-b.azure-devices.net", allocationWeight: Number.NaN },
  ];
  for (const id of ids.slice(0, 300)) assert.equal(weightedHash(id, odd), weightedHash(id, one));
});

test("adding a third hub moves about a third of the ids, all of them to the new hub", () => {
  const two = [
    { name: "hub-a.azure-devices.net", allocationWeight: 1 },
    { name: "hub-b.azure-devices.net", allocationWeight: 1 },
  ];
  const three = [...two, { name: "hub-c.azure-devices.net", allocationWeight: 1 }];
  let moved = 0;
  for (const id of ids) {
    const before = weightedHash(id, two);
    const after = weightedHash(id, three);
    if (before !== after) {
      moved++;
      assert.equal(after, "hub-c.azure-devices.net", `${id} moved between old hubs`);
    }
  }
  const fraction = moved / ids.length;
  assert.ok(fraction >= 0.25 && fraction <= 0.42, `moved ${fraction}`);
});

test("scores are positive and finite", () => {
  for (const id of ids.slice(0, 200)) {
    const score = rendezvousScore(id, { name: "hub-a.azure-devices.net", allocationWeight: 1000 });
    assert.ok(score > 0 && Number.isFinite(score), `${id}: ${score}`);
  }
});

test("U is the top 52 bits of SHA-256, offset by half a step, strictly inside (0,1)", () => {
  // SHA-256("abc") = ba7816bf8f01cfea…; top 13 hex digits ba7816bf8f01c.
  assert.equal(unitInterval("abc"), (0xba7816bf8f01c + 0.5) * 2 ** -52);
  const extremes = [0.5 * 2 ** -52, (2 ** 52 - 0.5) * 2 ** -52];
  assert.ok(extremes[0] !== undefined && extremes[0] > 0);
  assert.ok(extremes[1] !== undefined && extremes[1] < 1);
});
