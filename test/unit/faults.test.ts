import assert from "node:assert/strict";
import { test } from "node:test";
import { FaultCounter, parseFaultRule, parseFaultRules } from "../../src/domain/faults.js";

test("fault rules: what, share, and where", () => {
  assert.deepEqual(parseFaultRule("429 25%"), { fault: { kind: "429" }, share: 0.25, text: "429 25%" });
  assert.deepEqual(parseFaultRule(" 500 10% group=lab-devices "), {
    fault: { kind: "500" },
    share: 0.1,
    group: "lab-devices",
    text: "500 10% group=lab-devices",
  });
  assert.deepEqual(parseFaultRule("delay=5s 100% instance=provisio").fault, { kind: "delay", ms: 5000 });
  assert.deepEqual(parseFaultRule("delay=250ms 50%").fault, { kind: "delay", ms: 250 });
  assert.equal(parseFaultRules("429 25%; 500 10% ;").length, 2);
  for (const bad of ["418 10%", "429", "429 0%", "429 101%", "429 10% hub=x", "delay=5m 10%"]) {
    assert.throws(() => parseFaultRule(bad), /e\.g\. '429 25% group=lab-devices'/, bad);
  }
});

test("a share picks the same registrations on every run: 25% is every 4th", () => {
  const pick = (share: number, n: number) => {
    const c = new FaultCounter(share);
    return Array.from({ length: n }, () => c.next());
  };
  assert.deepEqual(pick(0.25, 8), [false, false, false, true, false, false, false, true]);
  assert.deepEqual(pick(1, 3), [true, true, true]);
  assert.equal(pick(0.1, 100).filter(Boolean).length, 10);
  assert.equal(pick(1 / 3, 9).filter(Boolean).length, 3);
});
