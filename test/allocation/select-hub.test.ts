// Allocation dispatcher (behaviors.md §4.1): effective policy, candidate hubs, exclusions and refusals.
import assert from "node:assert/strict";
import { test } from "node:test";
import { weightedHash } from "../../src/allocation/hashed.js";
import { compileLocationRules } from "../../src/allocation/location-rules.js";
import { type AllocationOutcome, effectivePolicy, selectHub } from "../../src/allocation/select-hub.js";
import type { AllocationPolicy, EnrollmentSettings } from "../../src/domain/enrollment.js";
import type { InstanceAllocationPolicy, LinkedHub } from "../../src/domain/instance.js";

const WEST = "contoso-west-hub.azure-devices.net";
const EAST = "contoso-east-hub.azure-devices.net";
const THIRD = "contoso-third-hub.azure-devices.net";

const linked = (name: string, location: string, extra: Partial<LinkedHub> = {}): LinkedHub => ({
  name,
  connectionString: `HostName=${name};SharedAccessKeyName=iothubowner;SharedAccessKey=AAAA`,
  location,
  allocationWeight: 1,
  applyAllocationPolicy: true,
  ...extra,
});

const hubs = [linked(WEST, "westus"), linked(EAST, "eastus")];
const locate = compileLocationRules([
  { ipMask: "10.1.0.0/16", location: "West US" },
  { ipMask: "10.2.0.0/16", location: "eastus" },
]);

/** What the engine hands over: the enrollment and the instance default, resolved by effectivePolicy. */
type Input = Omit<Parameters<typeof selectHub>[0], "policy" | "enrollment"> & {
  enrollment: Pick<EnrollmentSettings, "allocationPolicy" | "iotHubs" | "iotHubHostName">;
  instancePolicy: InstanceAllocationPolicy;
};
const base: Input = {
  registrationId: "contoso-simdevice-west",
  sourceAddress: "10.1.2.3",
  enrollment: {},
  instancePolicy: "hashed",
  linkedHubs: hubs,
  locate,
};
function select(over: Partial<Input>): AllocationOutcome {
  const { instancePolicy, ...input } = { ...base, ...over };
  const policy = effectivePolicy(input.enrollment, instancePolicy);
  assert.notEqual(policy, "custom", "custom allocation is the webhook's, not selectHub's");
  return selectHub({ ...input, policy: policy as Exclude<AllocationPolicy, "custom"> });
}

/** A registration id that hashes to `target` among `among`, so hashed vs geoLatency give different answers. */
function idHashingTo(target: string, among: readonly LinkedHub[]): string {
  for (let i = 0; ; i++) if (weightedHash(`device-${i}`, among) === target) return `device-${i}`;
}

test("the instance policy applies when the enrollment sets none", () => {
  const id = idHashingTo(EAST, hubs);
  assert.deepEqual(select({ registrationId: id, instancePolicy: "hashed" }), { ok: true, hub: EAST, policy: "hashed" });
  assert.deepEqual(select({ registrationId: id, instancePolicy: "geoLatency" }), {
    ok: true,
    hub: WEST,
    policy: "geoLatency",
  });
});

test("the enrollment policy overrides the instance policy", () => {
  const id = idHashingTo(EAST, hubs);
  assert.deepEqual(
    select({ registrationId: id, instancePolicy: "hashed", enrollment: { allocationPolicy: "geoLatency" } }),
    {
      ok: true,
      hub: WEST,
      policy: "geoLatency",
    },
  );
  assert.deepEqual(
    select({ registrationId: id, instancePolicy: "geoLatency", enrollment: { allocationPolicy: "hashed" } }),
    {
      ok: true,
      hub: EAST,
      policy: "hashed",
    },
  );
  assert.deepEqual(
    select({
      registrationId: id,
      instancePolicy: "hashed",
      enrollment: { allocationPolicy: "static", iotHubs: [WEST] },
    }),
    { ok: true, hub: WEST, policy: "static" },
  );
});

test("a legacy iotHubHostName implies static when no policy is set", () => {
  const id = idHashingTo(EAST, hubs);
  assert.deepEqual(select({ registrationId: id, enrollment: { iotHubHostName: WEST } }), {
    ok: true,
    hub: WEST,
    policy: "static",
  });
  // ...but an explicit policy still wins.
  assert.deepEqual(select({ registrationId: id, enrollment: { iotHubHostName: WEST, allocationPolicy: "hashed" } }), {
    ok: true,
    hub: EAST,
    policy: "hashed",
  });
});

test("seed 000 through the dispatcher: west and east devices land in their regions", () => {
  const geo = { instancePolicy: "geoLatency" as const };
  assert.deepEqual(select({ ...geo, registrationId: "contoso-simdevice-west", sourceAddress: "10.1.2.3" }), {
    ok: true,
    hub: WEST,
    policy: "geoLatency",
  });
  assert.deepEqual(select({ ...geo, registrationId: "contoso-simdevice-east", sourceAddress: "10.2.3.4" }), {
    ok: true,
    hub: EAST,
    policy: "geoLatency",
  });
});

test("the enrollment hub list narrows candidates, matched case-insensitively, returning the stored name", () => {
  const three = [...hubs, linked(THIRD, "westus")];
  for (let i = 0; i < 100; i++) {
    const out = select({
      registrationId: `device-${i}`,
      linkedHubs: three,
      enrollment: { iotHubs: [EAST.toUpperCase(), THIRD] },
    });
    assert.ok(out.ok);
    assert.ok(out.hub === EAST || out.hub === THIRD, out.hub);
    assert.equal(out.hub, weightedHash(`device-${i}`, [three[1], three[2]] as LinkedHub[]));
  }
  assert.deepEqual(select({ enrollment: { allocationPolicy: "static", iotHubs: [EAST.toUpperCase()] } }), {
    ok: true,
    hub: EAST,
    policy: "static",
  });
});

test("without an enrollment hub list every linked hub is a candidate", () => {
  const three = [...hubs, linked(THIRD, "westus")];
  const seen = new Set<string>();
  for (let i = 0; i < 300; i++) {
    const out = select({ registrationId: `device-${i}`, linkedHubs: three });
    assert.ok(out.ok);
    seen.add(out.hub);
  }
  assert.equal(seen.size, 3);
});

test("a listed hub that is not linked fails the registration", () => {
  for (const allocationPolicy of ["hashed", "geoLatency", "static"] as const) {
    assert.deepEqual(select({ enrollment: { allocationPolicy, iotHubs: ["gone.azure-devices.net"] } }), {
      ok: false,
      reason: "hub gone.azure-devices.net listed on the enrollment is not linked to this provisioning service",
    });
  }
  const out = select({ enrollment: { iotHubs: [WEST, "gone.azure-devices.net"] } });
  assert.equal(out.ok, false);
  assert.match(out.ok ? "" : out.reason, /gone\.azure-devices\.net .*not linked/);
  const legacy = select({ enrollment: { iotHubHostName: "gone.azure-devices.net" } });
  assert.match(legacy.ok ? "" : legacy.reason, /gone\.azure-devices\.net .*not linked/);
});

test("hubs with applyAllocationPolicy=false never receive hashed or geoLatency devices", () => {
  const withOff = [linked(WEST, "westus", { applyAllocationPolicy: false }), linked(EAST, "eastus")];
  for (let i = 0; i < 200; i++) {
    for (const instancePolicy of ["hashed", "geoLatency"] as const) {
      const out = select({ registrationId: `device-${i}`, linkedHubs: withOff, instancePolicy });
      assert.deepEqual(out, { ok: true, hub: EAST, policy: instancePolicy });
      // Also when the enrollment lists the excluded hub alongside an eligible one.
      const listed = select({
        registrationId: `device-${i}`,
        linkedHubs: withOff,
        instancePolicy,
        enrollment: { iotHubs: [WEST, EAST] },
      });
      assert.deepEqual(listed, { ok: true, hub: EAST, policy: instancePolicy });
    }
  }
});

test("static honours an explicit hub even with applyAllocationPolicy=false", () => {
  const withOff = [linked(WEST, "westus", { applyAllocationPolicy: false }), linked(EAST, "eastus")];
  assert.deepEqual(select({ linkedHubs: withOff, enrollment: { allocationPolicy: "static", iotHubs: [WEST] } }), {
    ok: true,
    hub: WEST,
    policy: "static",
  });
});

test("static needs exactly one hub on the enrollment", () => {
  const none = select({ instancePolicy: "static" });
  assert.equal(none.ok, false);
  assert.match(none.ok ? "" : none.reason, /exactly one IoT hub/);
  const two = select({ enrollment: { allocationPolicy: "static", iotHubs: [WEST, EAST] } });
  assert.equal(two.ok, false);
  assert.match(two.ok ? "" : two.reason, /exactly one IoT hub.*lists 2/);
});

test("a custom enrollment's effective policy is custom: its webhook decides, not selectHub", () => {
  assert.equal(effectivePolicy({ allocationPolicy: "custom" }, "hashed"), "custom");
  assert.equal(effectivePolicy({ iotHubHostName: WEST }, "geoLatency"), "static");
  assert.equal(effectivePolicy({}, "geoLatency"), "geoLatency");
});

test("no eligible hub fails with an actionable reason", () => {
  for (const instancePolicy of ["hashed", "geoLatency"] as const) {
    const empty = select({ instancePolicy, linkedHubs: [] });
    assert.equal(empty.ok, false);
    assert.match(empty.ok ? "" : empty.reason, /no linked IoT hub is eligible: link a hub/);
    const allOff = select({ instancePolicy, linkedHubs: hubs.map((h) => ({ ...h, applyAllocationPolicy: false })) });
    assert.deepEqual(allOff, {
      ok: false,
      reason: "no linked IoT hub is eligible: link a hub or set applyAllocationPolicy",
    });
    const listedOff = select({
      instancePolicy,
      linkedHubs: hubs.map((h) => ({ ...h, applyAllocationPolicy: false })),
      enrollment: { iotHubs: [WEST] },
    });
    assert.equal(listedOff.ok, false);
    assert.match(listedOff.ok ? "" : listedOff.reason, /no linked IoT hub is eligible: .*applyAllocationPolicy/);
  }
  const staticNoHubs = select({ linkedHubs: [], enrollment: { allocationPolicy: "static", iotHubs: [WEST] } });
  assert.match(staticNoHubs.ok ? "" : staticNoHubs.reason, /not linked/);
});

test("a source address given as a function is asked only by geoLatency", () => {
  let asked = 0;
  const sourceAddress = () => {
    asked++;
    return "10.2.3.4";
  };
  assert.equal(select({ registrationId: "contoso-simdevice-east", sourceAddress }).ok, true);
  assert.equal(asked, 0);
  const geo = select({ instancePolicy: "geoLatency", registrationId: "contoso-simdevice-east", sourceAddress });
  assert.deepEqual(geo, { ok: true, hub: EAST, policy: "geoLatency" });
  assert.equal(asked, 1);
});
