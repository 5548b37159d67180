// Compiled scope views against a real SQLite store: what they hold, when they are re-read, and that
// a re-read finding nothing new keeps the compiled view (with what it has kept for the next devices).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { SCOPE_VIEW_TTL_MS, ScopeViews } from "../../src/provisioning/scope-views.js";
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
  const instance = makeInstance(scope, "scoped");
  await store.createInstance(instance, [makePolicy("owner")]);
  await store.putGroup(scope, makeGroup("group-a"));
  let clock = 1_000_000;
  const views = new ScopeViews(store, store.changes, () => clock);
  const cache = { get: () => views.get(instance) };
  return {
    instance,
    views,
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
    const first = await f.cache.get();
    assert.deepEqual(
      first.groups.map((g) => g.enrollmentGroupId),
      ["group-a"],
    );
    assert.equal(await f.cache.get(), first);
    f.advance(SCOPE_VIEW_TTL_MS + 1);
    const reread = await f.cache.get();
    assert.equal(reread, first, "nothing changed: the re-read keeps the compiled view");
    assert.equal(reread.x509, first.x509, "and what it keeps for the next devices");
  } finally {
    await f.cleanup();
  }
});

test("a change made on another node (not announced here) shows after the TTL, as new objects", async () => {
  const f = await fixture();
  try {
    const first = await f.cache.get();
    await f.elsewhere.putGroup(f.scope, makeGroup("group-b"));
    assert.equal(await f.cache.get(), first, "unseen within the TTL");
    f.advance(SCOPE_VIEW_TTL_MS + 1);
    const after = await f.cache.get();
    assert.notEqual(after, first);
    assert.deepEqual(after.groups.map((g) => g.enrollmentGroupId).sort(), ["group-a", "group-b"]);
    // And the next unchanged re-read keeps the new objects.
    f.advance(SCOPE_VIEW_TTL_MS + 1);
    assert.equal(await f.cache.get(), after);
  } finally {
    await f.cleanup();
  }
});

test("a change the store announces shows at once", async () => {
  const f = await fixture();
  try {
    const first = await f.cache.get();
    await f.store.deleteGroup(f.scope, "group-a");
    const after = await f.cache.get();
    assert.notEqual(after, first);
    assert.deepEqual(after.groups, []);
  } finally {
    await f.cleanup();
  }
});

test("an instance change (new location rules) recompiles the view", async () => {
  const f = await fixture();
  try {
    const first = await f.cache.get();
    assert.equal(first.locate("10.1.2.3"), undefined);
    const updated = {
      ...f.instance,
      deviceLocationRules: [{ ipMask: "10.1.0.0/16", location: "westus" }],
      etag: "changed-etag",
    };
    await f.store.updateInstance(updated);
    const after = await f.views.get(updated);
    assert.notEqual(after, first);
    assert.equal(after.locate("10.1.2.3"), "westus");
  } finally {
    await f.cleanup();
  }
});

test("symmetric-key groups come with their keys, the device's last group first", async () => {
  const f = await fixture();
  try {
    await f.store.putGroup(f.scope, makeGroup("group-b"));
    const view = await f.cache.get();
    const ids = (registrationId: string) => view.symmetricKeyGroupsFor(registrationId).map((g) => g.enrollmentGroupId);
    assert.deepEqual(ids("dev-1"), ["group-a", "group-b"]);
    view.rememberGroup("DEV-1", "group-b");
    assert.deepEqual(ids("dev-1"), ["group-b", "group-a"], "ids are case-insensitive");
    assert.deepEqual(ids("dev-2"), ["group-a", "group-b"]);
    assert.equal(view.symmetricKeyGroupsFor("dev-2")[0]?.keys[0], "group-key-primary");
  } finally {
    await f.cleanup();
  }
});
