// Retry-After values (provisioning/backoff.ts): spread, growing with an operation's age, and
// longer past the in-flight bound.
import assert from "node:assert/strict";
import { test } from "node:test";
import { overloadRetryAfter, pollInterval, spreadRetryAfter } from "../../src/provisioning/backoff.js";

test("a Retry-After is spread over up to half again, at least one second of spread", () => {
  assert.equal(
    spreadRetryAfter(1, () => 0),
    1,
  );
  assert.equal(
    spreadRetryAfter(1, () => 0.99),
    2,
  );
  assert.equal(
    spreadRetryAfter(10, () => 0),
    10,
  );
  assert.equal(
    spreadRetryAfter(10, () => 0.99),
    15,
  );
  assert.equal(
    spreadRetryAfter(0.2, () => 0),
    1,
    "never below one second",
  );
  // Many devices told to wait 4 s come back over 4-6 s, not together.
  const seen = new Set(Array.from({ length: 200 }, () => spreadRetryAfter(4)));
  assert.deepEqual([...seen].sort(), [4, 5, 6]);
});

test("an operation still working is polled less often the older it is, up to 15 s", () => {
  assert.equal(pollInterval(0, 1), 1);
  assert.equal(pollInterval(9_999, 1), 1);
  assert.equal(pollInterval(30_000, 1), 3);
  assert.equal(pollInterval(60_000, 1), 6);
  assert.equal(pollInterval(3_600_000, 1), 15);
  assert.equal(pollInterval(30_000, 5), 5, "never below the base");
});

test("past the in-flight bound the wait starts at 2 s and grows with the load", () => {
  assert.equal(
    overloadRetryAfter(1000, 1000, () => 0),
    2,
  );
  assert.equal(
    overloadRetryAfter(3000, 1000, () => 0),
    6,
  );
  assert.ok(overloadRetryAfter(1000, 1000, () => 0.99) <= 3);
});
