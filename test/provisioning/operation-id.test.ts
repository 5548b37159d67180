import assert from "node:assert/strict";
import { test } from "node:test";
import { newOperationId } from "../../src/provisioning/operation-id.js";

test("operation ids have the DPS shape and stay within [0-9a-f.-]", () => {
  const id = newOperationId();
  assert.match(id, /^4\.[0-9a-f]{16}\.[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});

test("operation ids made later sort later, within one millisecond too", () => {
  const t = Date.UTC(2026, 10, 23);
  const ids = [newOperationId(t), newOperationId(t), newOperationId(t + 1), newOperationId(t + 1000)];
  assert.deepEqual([...ids].sort(), ids);
  assert.equal(new Set(ids).size, ids.length);
});
