// Location rules for lowest-latency allocation (behaviors.md §4.3): IPv4 CIDR matching, first rule wins,
// IPv4-mapped IPv6 sources, invalid masks, and location normalisation (management.md §1).
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  compileLocationRules,
  isValidIpMask,
  normalizeLocation,
  sourceIPv4,
} from "../../src/allocation/location-rules.js";

test("a /16 rule matches the whole block and nothing outside it", () => {
  const locate = compileLocationRules([{ ipMask: "10.1.0.0/16", location: "westus" }]);
  assert.equal(locate("10.1.0.0"), "westus");
  assert.equal(locate("10.1.2.3"), "westus");
  assert.equal(locate("10.1.255.255"), "westus");
  assert.equal(locate("10.0.255.255"), undefined);
  assert.equal(locate("10.2.0.0"), undefined);
});

test("a /8 rule covers its edges", () => {
  const locate = compileLocationRules([{ ipMask: "10.0.0.0/8", location: "eastus" }]);
  assert.equal(locate("10.0.0.0"), "eastus");
  assert.equal(locate("10.255.255.255"), "eastus");
  assert.equal(locate("9.255.255.255"), undefined);
  assert.equal(locate("11.0.0.0"), undefined);
});

test("high addresses compare as unsigned values", () => {
  const locate = compileLocationRules([{ ipMask: "192.168.0.0/16", location: "northeurope" }]);
  assert.equal(locate("192.168.10.20"), "northeurope");
  assert.equal(locate("192.169.0.0"), undefined);
  const top = compileLocationRules([{ ipMask: "255.255.255.255/32", location: "x" }]);
  assert.equal(top("255.255.255.255"), "x");
  assert.equal(top("255.255.255.254"), undefined);
});

test("/0 matches every IPv4 address", () => {
  const locate = compileLocationRules([{ ipMask: "0.0.0.0/0", location: "westeurope" }]);
  assert.equal(locate("0.0.0.0"), "westeurope");
  assert.equal(locate("1.2.3.4"), "westeurope");
  assert.equal(locate("255.255.255.255"), "westeurope");
});

test("/32 and a bare address match exactly one address", () => {
  const locate = compileLocationRules([
    { ipMask: "127.0.0.2/32", location: "westus" },
    { ipMask: "1.2.3.4", location: "eastus" },
  ]);
  assert.equal(locate("127.0.0.2"), "westus");
  assert.equal(locate("127.0.0.1"), undefined);
  assert.equal(locate("127.0.0.3"), undefined);
  assert.equal(locate("1.2.3.4"), "eastus");
  assert.equal(locate("1.2.3.5"), undefined);
});

test("host bits set in a rule's base address are ignored", () => {
  const locate = compileLocationRules([{ ipMask: "10.1.2.3/16", location: "westus" }]);
  assert.equal(locate("10.1.200.1"), "westus");
});

test("the first matching rule wins", () => {
  const locate = compileLocationRules([
    { ipMask: "10.1.0.0/16", location: "westus" },
    { ipMask: "10.0.0.0/8", location: "eastus" },
    { ipMask: "10.1.2.0/24", location: "northeurope" },
  ]);
  assert.equal(locate("10.1.2.3"), "westus");
  assert.equal(locate("10.9.0.1"), "eastus");
});

test("IPv4-mapped IPv6 source addresses match IPv4 rules", () => {
  const locate = compileLocationRules([{ ipMask: "127.0.0.2/32", location: "westus" }]);
  assert.equal(locate("::ffff:127.0.0.2"), "westus");
  assert.equal(locate("::FFFF:127.0.0.2"), "westus");
  assert.equal(locate("0:0:0:0:0:ffff:127.0.0.2"), "westus");
  assert.equal(locate("::ffff:7f00:2"), "westus");
  assert.equal(locate("::ffff:127.0.0.1"), undefined);
});

test("other IPv6 addresses and junk match nothing, even under /0", () => {
  const locate = compileLocationRules([{ ipMask: "0.0.0.0/0", location: "westus" }]);
  assert.equal(locate("::1"), undefined);
  assert.equal(locate("2001:db8::1"), undefined);
  assert.equal(locate("fe80::1%eth0"), undefined);
  assert.equal(locate("::ffff:1.2.3"), undefined);
  assert.equal(locate(""), undefined);
  assert.equal(locate("localhost"), undefined);
  assert.equal(locate("1.2.3.4.5"), undefined);
});

test("no rules locate nothing", () => {
  assert.equal(compileLocationRules([])("10.1.2.3"), undefined);
});

test("rule locations are normalised: lower-case, spaces removed", () => {
  const locate = compileLocationRules([{ ipMask: "10.1.0.0/16", location: "West US" }]);
  assert.equal(locate("10.1.2.3"), "westus");
  assert.equal(normalizeLocation("WEST US 2"), "westus2");
  assert.equal(normalizeLocation("eastus"), "eastus");
});

test("isValidIpMask accepts IPv4 addresses and CIDR blocks only", () => {
  for (const ok of ["10.0.0.0/8", "127.0.0.2/32", "1.2.3.4", "0.0.0.0/0", "255.255.255.255", " 10.0.0.0/8 "]) {
    assert.equal(isValidIpMask(ok), true, ok);
  }
  for (const bad of [
    "",
    "10.0.0.0/33",
    "10.0.0.0/-1",
    "10.0.0.0/",
    "10.0.0.0/08",
    "10.0.0/8",
    "256.0.0.0",
    "1.2.3.4.5",
    "01.2.3.4",
    "1..2.3",
    "a.b.c.d",
    "::1",
    "2001:db8::/32",
    "::ffff:10.0.0.0/104",
    "10.0.0.0/8/8",
  ]) {
    assert.equal(isValidIpMask(bad), false, bad);
  }
});

test("compiling an invalid mask throws a clear error naming the rule", () => {
  assert.throws(
    () =>
      compileLocationRules([
        { ipMask: "10.0.0.0/8", location: "westus" },
        { ipMask: "10.0.0.0/40", location: "eastus" },
      ]),
    (e: unknown) => e instanceof Error && /rule 1/.test(e.message) && /"10\.0\.0\.0\/40"/.test(e.message),
  );
  assert.throws(() => compileLocationRules([{ ipMask: "10.0.0.0/8", location: "  " }]), /location must not be empty/);
});

test("sourceIPv4 yields unsigned values", () => {
  assert.equal(sourceIPv4("255.255.255.255"), 0xffffffff);
  assert.equal(sourceIPv4("::ffff:255.255.255.255"), 0xffffffff);
  assert.equal(sourceIPv4("0.0.0.0"), 0);
});
