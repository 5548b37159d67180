import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { EnrollmentGroup } from "../../src/domain/enrollment.js";
import type { EnrollmentGroupId } from "../../src/domain/ids.js";
import { GroupHints } from "../../src/provisioning/group-hints.js";

const g = (id: string): EnrollmentGroup =>
  ({ enrollmentGroupId: id as EnrollmentGroupId, attestation: { type: "symmetricKey" } }) as EnrollmentGroup;
const ids = (groups: readonly EnrollmentGroup[]): string[] => groups.map((x) => x.enrollmentGroupId);

describe("GroupHints: a device's last group first", () => {
  const groups = [g("a"), g("b"), g("c"), g("d")];

  test("the remembered group moves to the front; the others keep their order", () => {
    const hints = new GroupHints();
    hints.remember("scope/dev-1", "c");
    assert.deepEqual(ids(hints.order("scope/dev-1", groups)), ["c", "a", "b", "d"]);
    assert.deepEqual(ids(groups), ["a", "b", "c", "d"], "the scope's array is not changed");
  });

  test("nothing to move gives the same array: unknown device, group gone, or already first", () => {
    const hints = new GroupHints();
    assert.equal(hints.order("scope/dev-1", groups), groups);
    hints.remember("scope/dev-1", "deleted-group");
    assert.equal(hints.order("scope/dev-1", groups), groups);
    hints.remember("scope/dev-1", "a");
    assert.equal(hints.order("scope/dev-1", groups), groups);
  });

  test("at the limit the device remembered longest ago is forgotten", () => {
    const hints = new GroupHints(2);
    hints.remember("dev-1", "b");
    hints.remember("dev-2", "c");
    hints.remember("dev-1", "d"); // dev-1 is now the newest
    hints.remember("dev-3", "b");
    assert.equal(hints.order("dev-2", groups), groups, "dev-2 was the oldest");
    assert.deepEqual(ids(hints.order("dev-1", groups)), ["d", "a", "b", "c"]);
    assert.deepEqual(ids(hints.order("dev-3", groups)), ["b", "a", "c", "d"]);
  });
});
