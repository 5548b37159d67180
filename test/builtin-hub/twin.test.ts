// Device-twin logic (iothub-api.md §5 Twin REST, §6.5 twin over MQTT, §6.6 desired notifications).
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  applyReportedPatch,
  applyServicePatch,
  applyServiceReplace,
  desiredNotification,
  etagMatchesTwin,
  type JsonObject,
  type MetadataNode,
  newTwin,
  TwinError,
  type TwinState,
  twinPropertiesJson,
} from "../../src/builtin-hub/twin.js";

const T0 = "2024-01-01T00:00:00.000Z";
const T1 = "2024-01-01T00:01:00.000Z";
const T2 = "2024-01-01T00:02:00.000Z";

const badRequest = (pattern: RegExp) => (e: unknown) => {
  assert.ok(e instanceof TwinError, `expected TwinError, got ${String(e)}`);
  assert.equal(e.status, 400);
  assert.equal(e.code, "ArgumentInvalid");
  assert.match(e.message, pattern);
  return true;
};

const etagOf = (n: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b.toString("base64");
};

/** The §5 captured PATCH applied to a fresh twin. */
function capturedTwin(): TwinState {
  const patch = {
    tags: { env: "dev", site: { floor: 3 } },
    properties: { desired: { interval: 30, cfg: { mode: "eco" } } },
  };
  return applyServicePatch(newTwin(T0), patch, T1).twin;
}

const meta = (node: MetadataNode | string | number | undefined): MetadataNode => {
  assert.equal(typeof node, "object", "metadata node missing");
  return node as MetadataNode;
};

// --- fresh twin and etags ---

test("a fresh twin has version 1, desired and reported $version 1 and etag AAAAAAAAAAE=", () => {
  assert.deepEqual(newTwin(T0), {
    etag: "AAAAAAAAAAE=",
    etagCounter: 1,
    version: 1,
    tags: {},
    desired: { properties: {}, metadata: { $lastUpdated: T0, $lastUpdatedVersion: 1 }, version: 1 },
    reported: { properties: {}, metadata: { $lastUpdated: T0 }, version: 1 },
  });
});

test("the twin etag is base64 of the 8-byte big-endian etag counter", () => {
  let twin = newTwin(T0);
  for (let i = 0; i < 300; i++) twin = applyServicePatch(twin, { tags: { n: i } }, T1).twin;
  assert.equal(twin.etagCounter, 301);
  assert.equal(twin.etag, etagOf(301));
  assert.equal(twin.etag, "AAAAAAAAAS0=");
  assert.equal(capturedTwin().etag, "AAAAAAAAAAI=");
});

test("an If-Match etag matches quoted, unquoted, with W/ prefix, or *; a stale one does not", () => {
  const twin = capturedTwin();
  assert.ok(etagMatchesTwin(undefined, twin));
  assert.ok(etagMatchesTwin("AAAAAAAAAAI=", twin));
  assert.ok(etagMatchesTwin('"AAAAAAAAAAI="', twin));
  assert.ok(etagMatchesTwin(' W/"AAAAAAAAAAI=" ', twin));
  assert.ok(etagMatchesTwin("*", twin));
  assert.ok(etagMatchesTwin('"*"', twin));
  assert.ok(!etagMatchesTwin('"AAAAAAAAAAE="', twin), "stale etag");
  assert.ok(!etagMatchesTwin("", twin));
  assert.ok(!etagMatchesTwin('""AAAAAAAAAAI=""', twin), "only one pair of quotes is stripped");
});

// --- service PATCH merge ---

test("a tags patch merges into existing tags and a null tag removes it", () => {
  let { twin } = applyServicePatch(newTwin(T0), { tags: { env: "dev", site: { floor: 3, room: "a" } } }, T1);
  ({ twin } = applyServicePatch(twin, { tags: { owner: "ops", site: { room: null, wing: "E" } } }, T2));
  assert.deepEqual(twin.tags, { env: "dev", owner: "ops", site: { floor: 3, wing: "E" } });
  ({ twin } = applyServicePatch(twin, { tags: { site: null } }, T2));
  assert.deepEqual(twin.tags, { env: "dev", owner: "ops" });
});

test("a desired patch merges nested objects recursively", () => {
  let twin = capturedTwin();
  ({ twin } = applyServicePatch(twin, { properties: { desired: { cfg: { level: 2, sub: { x: 1 } } } } }, T2));
  assert.deepEqual(twin.desired.properties, { interval: 30, cfg: { mode: "eco", level: 2, sub: { x: 1 } } });
});

test("a null in a desired patch deletes the key and its metadata", () => {
  const { twin } = applyServicePatch(capturedTwin(), { properties: { desired: { cfg: { mode: null } } } }, T2);
  assert.deepEqual(twin.desired.properties, { interval: 30, cfg: {} });
  const cfgMeta = meta(twin.desired.metadata.cfg);
  assert.equal(cfgMeta.mode, undefined);
  assert.deepEqual(cfgMeta, { $lastUpdated: T2, $lastUpdatedVersion: 3 });
  const after = applyServicePatch(twin, { properties: { desired: { cfg: null } } }, T2).twin;
  assert.deepEqual(after.desired.properties, { interval: 30 });
  assert.equal(after.desired.metadata.cfg, undefined);
});

test("arrays replace rather than merge, and a scalar may replace an object and vice versa", () => {
  let { twin } = applyServicePatch(newTwin(T0), { properties: { desired: { list: [1, 2, 3], o: { a: 1 } } } }, T1);
  ({ twin } = applyServicePatch(twin, { properties: { desired: { list: [{ k: "v" }], o: 5, s: { b: 2 } } } }, T2));
  assert.deepEqual(twin.desired.properties, { list: [{ k: "v" }], o: 5, s: { b: 2 } });
  assert.deepEqual(
    meta(twin.desired.metadata.o),
    { $lastUpdated: T2, $lastUpdatedVersion: 3 },
    "no stale child metadata",
  );
  assert.deepEqual(meta(twin.desired.metadata.list), { $lastUpdated: T2, $lastUpdatedVersion: 3 });
});

test("$-prefixed keys in patches are ignored, at any level", () => {
  const base = capturedTwin();
  const echo = twinPropertiesJson(base).desired as JsonObject; // a GET echoed back: $metadata, $version
  const { twin, desiredPatch } = applyServicePatch(
    base,
    { tags: { $x: 1, t: { $y: 2, z: 3 } }, properties: { desired: { ...echo, interval: 31, cfg: { $v: 1 } } } },
    T2,
  );
  assert.deepEqual(twin.tags, { env: "dev", site: { floor: 3 }, t: { z: 3 } });
  assert.deepEqual(twin.desired.properties, { interval: 31, cfg: { mode: "eco" } });
  assert.deepEqual(desiredPatch, { interval: 31, cfg: {} });
  const onlyDollars = applyServicePatch(base, { tags: { $a: 1 }, properties: { desired: { $version: 9 } } }, T2);
  assert.deepEqual(onlyDollars.twin, base, "nothing changes when only $-keys are sent");
  assert.equal(onlyDollars.desiredPatch, undefined);
});

test("a '__proto__' key is stored as an ordinary property, not as the prototype", () => {
  const patch = JSON.parse('{"properties":{"desired":{"__proto__":{"polluted":true}}}}');
  const { twin } = applyServicePatch(newTwin(T0), patch, T1);
  assert.deepEqual(Object.keys(twin.desired.properties), ["__proto__"]);
  assert.equal(Object.getPrototypeOf(twin.desired.properties), Object.prototype);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  const again = applyServicePatch(twin, JSON.parse('{"properties":{"desired":{"__proto__":{"b":1}}}}'), T2).twin;
  assert.equal(JSON.stringify(again.desired.properties), '{"__proto__":{"polluted":true,"b":1}}');
  assert.equal(({} as Record<string, unknown>).b, undefined);
});

// --- versions, etag counter, metadata ---

test("a tags or desired change bumps version and etag once; desired $version only for desired", () => {
  const t1 = capturedTwin();
  assert.equal(t1.version, 2);
  assert.equal(t1.desired.version, 2);
  assert.equal(t1.reported.version, 1);
  assert.equal(t1.etagCounter, 2);
  const t2 = applyServicePatch(t1, { tags: { env: "prod" } }, T2).twin;
  assert.deepEqual([t2.version, t2.desired.version, t2.reported.version, t2.etagCounter], [3, 2, 1, 3]);
  assert.equal(t2.etag, "AAAAAAAAAAM=");
  assert.deepEqual(t2.desired, t1.desired, "desired metadata untouched by a tags patch");
});

test("an empty patch {} changes nothing (no version bump)", () => {
  const base = capturedTwin();
  for (const patch of [{}, { tags: {} }, { properties: {} }, { properties: { desired: {} } }]) {
    const { twin, desiredPatch } = applyServicePatch(base, patch, T2);
    assert.deepEqual(twin, base);
    assert.equal(desiredPatch, undefined);
  }
  assert.deepEqual(applyReportedPatch(base, {}, T2), base);
});

test("desired metadata gets $lastUpdated and $lastUpdatedVersion per node, objects included, parents refreshed", () => {
  const t1 = capturedTwin();
  assert.deepEqual(t1.desired.metadata, {
    $lastUpdated: T1,
    $lastUpdatedVersion: 2,
    interval: { $lastUpdated: T1, $lastUpdatedVersion: 2 },
    cfg: { $lastUpdated: T1, $lastUpdatedVersion: 2, mode: { $lastUpdated: T1, $lastUpdatedVersion: 2 } },
  });
  const t2 = applyServicePatch(t1, { properties: { desired: { cfg: { eco: { level: 1 } } } } }, T2).twin;
  assert.deepEqual(t2.desired.metadata, {
    $lastUpdated: T2,
    $lastUpdatedVersion: 3,
    interval: { $lastUpdated: T1, $lastUpdatedVersion: 2 },
    cfg: {
      $lastUpdated: T2,
      $lastUpdatedVersion: 3,
      mode: { $lastUpdated: T1, $lastUpdatedVersion: 2 },
      eco: { $lastUpdated: T2, $lastUpdatedVersion: 3, level: { $lastUpdated: T2, $lastUpdatedVersion: 3 } },
    },
  });
});

test("desiredPatch is returned only when desired changed, as applied with nulls", () => {
  const base = capturedTwin();
  assert.equal(applyServicePatch(base, { tags: { a: 1 } }, T2).desiredPatch, undefined);
  const { desiredPatch } = applyServicePatch(
    base,
    { tags: { a: 1 }, properties: { desired: { interval: 99, cfg: null } } },
    T2,
  );
  assert.deepEqual(desiredPatch, { interval: 99, cfg: null });
});

// --- service PUT (replace) ---

test("a replace swaps tags and desired and returns a patch that removes old keys with null", () => {
  const base = applyServicePatch(
    capturedTwin(),
    { properties: { desired: { gone: true, cfg: { mode: "eco", old: 1 }, list: [1] } } },
    T1,
  ).twin;
  const { twin, desiredPatch } = applyServiceReplace(
    base,
    {
      deviceId: "ignored",
      etag: "x",
      tags: { k: "v" },
      properties: { desired: { interval: 30, cfg: { mode: "max" }, list: [1] } },
    },
    T2,
  );
  assert.deepEqual(twin.tags, { k: "v" });
  assert.deepEqual(twin.desired.properties, { interval: 30, cfg: { mode: "max" }, list: [1] });
  assert.deepEqual(desiredPatch, { gone: null, cfg: { old: null, mode: "max" } });
  assert.deepEqual(
    [twin.version, twin.desired.version, twin.etagCounter],
    [base.version + 1, base.desired.version + 1, base.etagCounter + 1],
  );
  assert.deepEqual(
    meta(twin.desired.metadata.interval),
    meta(base.desired.metadata.interval),
    "unchanged node keeps metadata",
  );
  assert.equal(twin.desired.metadata.gone, undefined);
  assert.equal(meta(twin.desired.metadata.cfg).old, undefined);
  assert.equal(meta(meta(twin.desired.metadata.cfg).mode).$lastUpdated, T2);
});

test("a replace with absent tags and desired empties them; an identical replace changes nothing", () => {
  const base = capturedTwin();
  const same = applyServiceReplace(base, { tags: base.tags, properties: twinPropertiesJson(base) }, T2);
  assert.deepEqual(same.twin, base, "reported in a PUT body is ignored, $metadata/$version too");
  assert.equal(same.desiredPatch, undefined);
  const { twin, desiredPatch } = applyServiceReplace(base, {}, T2);
  assert.deepEqual(twin.tags, {});
  assert.deepEqual(twin.desired.properties, {});
  assert.deepEqual(desiredPatch, { interval: null, cfg: null });
  assert.deepEqual(twin.desired.metadata, { $lastUpdated: T2, $lastUpdatedVersion: 3 });
  const tagsOnly = applyServiceReplace(base, { tags: {}, properties: { desired: base.desired.properties } }, T2);
  assert.equal(tagsOnly.desiredPatch, undefined);
  assert.deepEqual([tagsOnly.twin.version, tagsOnly.twin.desired.version], [3, 2]);
});

// --- reported (device) ---

test("a reported patch merges into reported and bumps reported $version and the etag, not the twin version", () => {
  const base = capturedTwin();
  let twin = applyReportedPatch(base, { firmware: "1.0.0", battery: 80, nested: { a: 1 } }, T2);
  assert.deepEqual(twin.reported.properties, { firmware: "1.0.0", battery: 80, nested: { a: 1 } });
  assert.deepEqual([twin.version, twin.desired.version, twin.reported.version, twin.etagCounter], [2, 2, 2, 3]);
  assert.deepEqual(twin.reported.metadata, {
    $lastUpdated: T2,
    firmware: { $lastUpdated: T2 },
    battery: { $lastUpdated: T2 },
    nested: { $lastUpdated: T2, a: { $lastUpdated: T2 } },
  });
  twin = applyReportedPatch(twin, { battery: null, nested: { b: [1] }, $version: 7 }, T2);
  assert.deepEqual(twin.reported.properties, { firmware: "1.0.0", nested: { a: 1, b: [1] } });
  assert.equal(twin.reported.metadata.battery, undefined);
  assert.equal(twin.reported.version, 3);
});

test("a reported patch that is not an object is rejected with 400", () => {
  for (const bad of [null, [1], "x", 3])
    assert.throws(() => applyReportedPatch(newTwin(T0), bad, T1), badRequest(/object/));
});

// --- validation ---

test("a service patch containing properties.reported is rejected with 400", () => {
  assert.throws(
    () => applyServicePatch(newTwin(T0), { properties: { reported: { a: 1 } } }, T1),
    badRequest(/properties\.reported/),
  );
});

test("non-object patch bodies, tags or desired are rejected with 400", () => {
  const twin = newTwin(T0);
  for (const body of [null, [], "s", 1, undefined]) {
    assert.throws(() => applyServicePatch(twin, body, T1), badRequest(/body must be a JSON object/));
    assert.throws(() => applyServiceReplace(twin, body, T1), badRequest(/body must be a JSON object/));
  }
  assert.throws(() => applyServicePatch(twin, { tags: [1] }, T1), badRequest(/^tags must be a JSON object/));
  assert.throws(() => applyServicePatch(twin, { tags: null }, T1), badRequest(/^tags must be a JSON object/));
  assert.throws(() => applyServicePatch(twin, { properties: 1 }, T1), badRequest(/^properties must be/));
  assert.throws(
    () => applyServicePatch(twin, { properties: { desired: "x" } }, T1),
    badRequest(/properties\.desired must be a JSON object/),
  );
  assert.throws(() => applyServicePatch(twin, { tags: { d: new Date() } }, T1), badRequest(/'d' is not valid JSON/));
});

test("tags over 8 KB and desired or reported over 32 KB are rejected with 400 naming the section", () => {
  const twin = newTwin(T0);
  assert.throws(
    () => applyServicePatch(twin, { tags: { big: "x".repeat(8200) } }, T1),
    badRequest(/^tags is \d+ bytes, over the 8192-byte limit/),
  );
  applyServicePatch(twin, { tags: { ok: "x".repeat(8000) } }, T1);
  const half = "x".repeat(17000);
  const t1 = applyServicePatch(twin, { properties: { desired: { a: half } } }, T1).twin;
  assert.throws(
    () => applyServicePatch(t1, { properties: { desired: { b: half } } }, T1),
    badRequest(/^properties\.desired is \d+ bytes, over the 32768-byte limit/),
    "the limit applies to the merged document",
  );
  assert.throws(
    () => applyServiceReplace(twin, { properties: { desired: { a: half, b: half } } }, T1),
    badRequest(/properties\.desired .* 32768-byte limit/),
  );
  const r1 = applyReportedPatch(twin, { a: half }, T1);
  assert.throws(() => applyReportedPatch(r1, { b: half }, T1), badRequest(/^properties\.reported .* 32768-byte limit/));
  assert.throws(
    () => applyReportedPatch(twin, { a: "é".repeat(17000) }, T1),
    badRequest(/reported/),
    "bytes, not chars",
  );
});

test("keys over 1 KB or containing '.', '$', space or control characters are rejected with 400", () => {
  const twin = newTwin(T0);
  const desired = (d: JsonObject) => ({ properties: { desired: d } });
  assert.throws(
    () => applyServicePatch(twin, desired({ ["k".repeat(1025)]: 1 }), T1),
    badRequest(/longer than 1024 bytes/),
  );
  applyServicePatch(twin, desired({ ["k".repeat(1024)]: 1 }), T1);
  assert.throws(() => applyServicePatch(twin, desired({ "a.b": 1 }), T1), badRequest(/'a\.b' .*contains '\.'/));
  assert.throws(() => applyServicePatch(twin, desired({ a$b: 1 }), T1), badRequest(/'a\$b' .*contains '\$'/));
  assert.throws(() => applyServicePatch(twin, { tags: { x: { "a b": 1 } } }, T1), badRequest(/at 'x' contains space/));
  assert.throws(() => applyReportedPatch(twin, { "a\nb": 1 }, T1), badRequest(/contains a control character/));
  assert.throws(() => applyReportedPatch(twin, { "a\u007fb": 1 }, T1), badRequest(/contains a control character/));
  assert.throws(
    () => applyReportedPatch(twin, { l: [{ $x: 1 }] }, T1),
    badRequest(/'\$x' at 'l\.\[0\]' contains '\$'/),
    "arrays are opaque: $ keys inside are errors",
  );
});

test("nesting deeper than 10 is rejected with 400; exactly 10 is accepted", () => {
  const nest = (levels: number): JsonObject => {
    let v: JsonObject = { property: "value" };
    for (let i = levels; i >= 2; i--) v = { [`l${i}`]: v };
    return { l1: v };
  };
  // l1..l10 hold objects at depth 1..10 (the Azure docs' valid ten-level example)
  const ok = applyServicePatch(newTwin(T0), { tags: nest(10) }, T1).twin;
  assert.deepEqual(Object.keys(ok.tags), ["l1"]);
  assert.throws(
    () => applyServicePatch(newTwin(T0), { tags: nest(11) }, T1),
    badRequest(/nesting depth exceeds 10 at 'l1\.l2.*l11'/),
  );
  assert.throws(() => applyReportedPatch(newTwin(T0), nest(11), T1), badRequest(/nesting depth exceeds 10/));
  const arrays: JsonObject = { a: [[[[[[[[[[1]]]]]]]]]] }; // 10 nested arrays
  applyReportedPatch(newTwin(T0), arrays, T1);
  assert.throws(
    () => applyReportedPatch(newTwin(T0), { a: [arrays.a ?? null] }, T1),
    badRequest(/nesting depth exceeds 10/),
  );
});

test("numbers must be finite and integers within ±4503599627370495, else 400", () => {
  const twin = newTwin(T0);
  applyReportedPatch(twin, { max: 4503599627370495, min: -4503599627370495, f: 21.5 }, T1);
  assert.throws(
    () => applyReportedPatch(twin, { n: 4503599627370496 }, T1),
    badRequest(/integer at 'n' is outside ±4503599627370495/),
  );
  assert.throws(() => applyReportedPatch(twin, { n: -4503599627370496 }, T1), badRequest(/outside/));
  assert.throws(() => applyReportedPatch(twin, { n: 1e20 }, T1), badRequest(/outside/));
  assert.throws(
    () => applyServicePatch(twin, { tags: { n: Number.NaN } }, T1),
    badRequest(/number at 'n' is not finite/),
  );
  assert.throws(
    () => applyServicePatch(twin, { tags: { l: [Number.POSITIVE_INFINITY] } }, T1),
    badRequest(/not finite/),
  );
});

test("a rejected patch leaves the twin untouched and no function mutates its inputs", () => {
  const base = capturedTwin();
  const snapshot = structuredClone(base);
  const patch = {
    tags: { site: { floor: null }, n: 1 },
    properties: { desired: { cfg: { mode: null }, $version: 4 } },
  };
  const patchSnapshot = structuredClone(patch);
  const { twin, desiredPatch } = applyServicePatch(base, patch, T2);
  applyServiceReplace(base, patch, T2);
  applyReportedPatch(base, { a: { b: 1 } }, T2);
  assert.throws(() => applyServicePatch(base, { tags: { ok: 1, "bad.key": 1 } }, T2));
  assert.throws(() => applyServicePatch(base, { tags: { big: "x".repeat(9000) } }, T2));
  assert.deepEqual(base, snapshot);
  assert.deepEqual(patch, patchSnapshot);
  assert.ok(desiredPatch);
  desiredPatch.extra = 1;
  const props = twinPropertiesJson(twin);
  (props.desired as JsonObject).interval = 0;
  desiredNotification(desiredPatch, twin).$version = 99;
  assert.deepEqual(twin.desired.properties, { interval: 30, cfg: {} });
  assert.deepEqual(patch, patchSnapshot, "returned desiredPatch is not the caller's patch object");
});

// --- wire shapes ---

test("twinPropertiesJson is the GET response body: desired and reported with $metadata and $version (§6.5)", () => {
  assert.deepEqual(twinPropertiesJson(capturedTwin()), {
    desired: {
      interval: 30,
      cfg: { mode: "eco" },
      $metadata: {
        $lastUpdated: T1,
        $lastUpdatedVersion: 2,
        interval: { $lastUpdated: T1, $lastUpdatedVersion: 2 },
        cfg: { $lastUpdated: T1, $lastUpdatedVersion: 2, mode: { $lastUpdated: T1, $lastUpdatedVersion: 2 } },
      },
      $version: 2,
    },
    reported: { $metadata: { $lastUpdated: T0 }, $version: 1 },
  });
});

test("desiredNotification is the applied patch with nulls plus the new desired $version (§6.6)", () => {
  const t2 = applyServicePatch(capturedTwin(), { tags: { a: 1 } }, T2).twin; // desired $version still 2
  const { twin, desiredPatch } = applyServicePatch(t2, { properties: { desired: { interval: 99, cfg: null } } }, T2);
  assert.ok(desiredPatch);
  const body = desiredNotification(desiredPatch, twin);
  assert.deepEqual(body, { interval: 99, cfg: null, $version: 3 });
  assert.equal(JSON.stringify(body), '{"interval":99,"cfg":null,"$version":3}');
});
