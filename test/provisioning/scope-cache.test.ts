// The scope cache against a real SQLite store: what it hands out, when it re-reads, and that a
// re-read finding nothing new keeps the very same objects (attestation caches and V8's optimised
// code are keyed on them).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { SCOPE_CACHE_TTL_MS, ScopeCache } from "../../src/provisioning/scope-cache.js";
import { SecretBox } from "../../src/security/secret-box.js";
import { openSqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { makeGroup, makeInstance, makePolicy, scopeOf } from "../store/store-conformance.js";

async function fixture() {
  const dir = mkdtempSync(join(tmpdir(), "provisio-scope-cache-"));
  const box = new SecretBox(randomBytes(32));
  const store = openSqliteStore(join(dir, "provisio.db"), box);
  // Another node: a second connection to the same database, whose writes this node does not hear of.
  const elsewhere = openSqliteStore(join(dir, "provisio.db"), box);
  const scope = scopeOf(7);
  await store.createInstance(makeInstance(scope, "scoped"), [makePolicy("owner")]);
  await store.putGroup(scope, makeGroup("group-a"));
  let clock = 1_000_000;
  const cache = new ScopeCache(store, store.changes, () => clock);
  return {
    store,
    elsewhere,
    scope,
    cache,
    advance: (ms: number) => {
      clock += ms;
    },
    cleanup: async () => {
      await store.close();
      await elsewhere.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test("within the TTL the same config is handed out; after it, an unchanged scope keeps its objects", async () => {
  const f = await fixture();
  try {
    const first = await f.cache.get(f.scope);
    assert.deepEqual(
      first.groups.map((g) => g.enrollmentGroupId),
      ["group-a"],
    );
    assert.equal(await f.cache.get(f.scope), first);
    f.advance(SCOPE_CACHE_TTL_MS + 1);
    const reread = await f.cache.get(f.scope);
    assert.equal(reread, first, "nothing changed: the re-read hands out the old objects");
    assert.equal(reread.groups, first.groups);
  } finally {
    await f.cleanup();
  }
});

test("a change made on another node (not announced here) shows after the TTL, as new objects", async () => {
  const f = await fixture();
  try {
    const first = await f.cache.get(f.scope);
    await f.elsewhere.putGroup(f.scope, makeGroup("group-b"));
    assert.equal(await f.cache.get(f.scope), first, "unseen within the TTL");
    f.advance(SCOPE_CACHE_TTL_MS + 1);
    const after = await f.cache.get(f.scope);
    assert.notEqual(after, first);
    assert.deepEqual(after.groups.map((g) => g.enrollmentGroupId).sort(), ["group-a", "group-b"]);
    // And the next unchanged re-read keeps the new objects.
    f.advance(SCOPE_CACHE_TTL_MS + 1);
    assert.equal(await f.cache.get(f.scope), after);
  } finally {
    await f.cleanup();
  }
});

test("a change the store announces shows at once", async () => {
  const f = await fixture();
  try {
    const first = await f.cache.get(f.scope);
    await f.store.deleteGroup(f.scope, "group-a");
    const after = await f.cache.get(f.scope);
    assert.notEqual(after, first);
    assert.deepEqual(after.groups, []);
  } finally {
    await f.cleanup();
  }
});
