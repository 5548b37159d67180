// The pure parts of `provisio apply`: reading fleet files (one or a folder) and planning changes.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { loadManifest, parseManifest } from "../../src/cli/fleet/manifest.js";
import {
  comparableEnrollment,
  diffLines,
  formatPlan,
  type InstanceState,
  planInstance,
} from "../../src/cli/fleet/plan.js";
import { renderTable } from "../../src/cli/output.js";

const empty = (): InstanceState => ({
  name: "provisio",
  exists: true,
  etag: "e",
  allocationPolicy: "Hashed",
  publicNetworkAccess: "Enabled",
  ipFilterRules: [],
  hubs: [],
  policies: [],
  certificates: [],
  groups: new Map(),
  enrollments: new Map(),
});

test("diffLines names each differing leaf", () => {
  assert.deepEqual(diffLines({ a: 1, b: { c: "x" } }, { a: 1, b: { c: "y", d: true } }), [
    'b.c: "x" → "y"',
    "b.d: (unset) → true",
  ]);
  assert.deepEqual(diffLines({ a: [1, 2] }, { a: [1, 2] }), []);
});

test("comparableEnrollment drops server-owned fields and defaults", () => {
  const stored = {
    registrationId: "d",
    attestation: { type: "symmetricKey" },
    provisioningStatus: "enabled",
    reprovisionPolicy: { updateHubAssignment: true, migrateDeviceData: true },
    capabilities: { iotEdge: false },
    etag: "x",
    createdDateTimeUtc: "t",
    initialTwin: { tags: {}, properties: { desired: {} } },
  };
  assert.deepEqual(comparableEnrollment(stored, { type: "symmetricKey", symmetricKey: { primaryKey: "k" } }, false), {
    registrationId: "d",
    attestation: { type: "symmetricKey" },
  });
});

test("a plan creates, updates with a diff, prunes only listed kinds, and never the signing policy", () => {
  const state = empty();
  state.enrollments.set("old", {
    body: { registrationId: "old", attestation: { type: "tpm", tpm: { endorsementKey: "AA" } } },
    attestation: { type: "tpm", tpm: { endorsementKey: "AA" } },
  });
  state.enrollments.set("same", {
    body: { registrationId: "same", attestation: { type: "symmetricKey" }, provisioningStatus: "enabled" },
    attestation: { type: "symmetricKey", symmetricKey: { primaryKey: "p", secondaryKey: "s" } },
  });
  state.policies = [
    { keyName: "provisioningserviceowner", rights: "ServiceConfig", primaryKey: "a", secondaryKey: "b" },
    { keyName: "other", rights: "EnrollmentRead", primaryKey: "c", secondaryKey: "d" },
  ];
  const desired = parseManifest(
    {
      provisioningServices: [
        {
          name: "provisio",
          policies: [],
          enrollments: [
            { registrationId: "same", attestation: { type: "symmetricKey" }, provisioningStatus: "disabled" },
            { registrationId: "new", attestation: { type: "symmetricKey" } },
          ],
        },
      ],
    },
    "f",
    ".",
  ).provisioningServices[0];
  assert.ok(desired);
  const changes = planInstance(desired, state, { prune: true, signingPolicy: "provisioningserviceowner" });
  assert.deepEqual(
    changes.map((c) => `${c.action} ${c.kind} ${c.id}`),
    ["delete policy other", "update enrollment same", "create enrollment new", "delete enrollment old"],
  );
  assert.deepEqual(changes[1]?.diff, ['provisioningStatus: (unset) → "disabled"']);
  assert.match(formatPlan(changes), /Plan: 1 to create, 1 to update, 2 to delete\./);
  // Without --prune nothing is deleted; a kind the file does not list is left alone.
  assert.equal(planInstance(desired, state, { prune: false }).filter((c) => c.action === "delete").length, 0);
});

test("a folder's files merge by instance; a duplicate across files is caught", () => {
  const dir = mkdtempSync(join(tmpdir(), "provisio-manifest-"));
  try {
    writeFileSync(
      join(dir, "a.yaml"),
      "provisioningServices:\n  - name: provisio\n    enrollments:\n      - registrationId: a\n        attestation: {type: symmetricKey}\n",
    );
    writeFileSync(
      join(dir, "b.json"),
      JSON.stringify({
        provisioningServices: [
          { name: "PROVISIO", enrollments: [{ registrationId: "b", attestation: { type: "symmetricKey" } }] },
        ],
      }),
    );
    writeFileSync(join(dir, "notes.txt"), "ignored");
    const m = loadManifest(dir);
    assert.deepEqual(
      m.provisioningServices[0]?.enrollments?.map((e) => e.registrationId),
      ["a", "b"],
    );
    writeFileSync(
      join(dir, "c.yaml"),
      "provisioningServices:\n  - name: provisio\n    enrollments:\n      - registrationId: a\n        attestation: {type: tpm, tpm: {endorsementKey: AA}}\n",
    );
    assert.throws(() => loadManifest(dir), /lists 'a' twice/);
    writeFileSync(join(dir, "d.yaml"), "provisioningServices: [\n");
    assert.throws(() => loadManifest(dir), /d\.yaml/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("renderTable: scalar columns headed like az's", () => {
  assert.equal(
    renderTable([
      { name: "a", n: 1, nested: {} },
      { name: "bb", extra: true },
    ]),
    "Name  N  Extra\n----  -  -----\na     1\nbb       true\n",
  );
  assert.equal(renderTable([]), "");
  assert.equal(renderTable("key"), "key\n");
});
