// The Store conformance suite: one set of behaviours every implementation must show.
// An implementation's test file calls runStoreConformance with a factory for a fresh, empty store.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, test } from "node:test";
import type { EnrollmentGroup, IndividualEnrollment } from "../../src/domain/enrollment.js";
import { symmetricKeysOf } from "../../src/domain/enrollment.js";
import { newEtag, nowUtc } from "../../src/domain/etag.js";
import type { HubDeviceRecord } from "../../src/domain/hub.js";
import type { HubIntent } from "../../src/domain/hub-intent.js";
import { enrollmentGroupId, type IdScope, idKey, registrationId } from "../../src/domain/ids.js";
import type { AccessPolicy, CaCertificate, Instance, LinkedHub } from "../../src/domain/instance.js";
import type { RegistrationOperation } from "../../src/domain/operation.js";
import type { RegistrationRecord } from "../../src/domain/registration-state.js";
import type { HubStore } from "../../src/store/hub-store.js";
import type { Precondition, ProvisioningStore, WriteResult } from "../../src/store/store.js";
import type { StoreChange } from "../../src/store/store-changes.js";

export interface StoreFixture {
  store: ProvisioningStore;
  /** The built-in hubs' store of the same backend. */
  hubs: HubStore;
  /** Closed-and-reopened view of the same data; enables the persistence test. */
  reopen?: () => Promise<ProvisioningStore>;
  /** Every byte the store has on disk, for the secrets-at-rest test. */
  rawBytes: () => Buffer | Promise<Buffer>;
  cleanup: () => Promise<void>;
}

// --- Test records, built from the domain types ---

export const scopeOf = (n: number): IdScope => `0ne${n.toString(16).toUpperCase().padStart(8, "0")}` as IdScope;

export function makeInstance(idScope: IdScope, name: string): Instance {
  return {
    idScope,
    name,
    hostName: `${name}.azure-devices-provisioning.net`,
    allocationPolicy: "hashed",
    createdDateTimeUtc: nowUtc(),
    etag: newEtag(),
  };
}

export function makePolicy(keyName: string, secret = "policy-key"): AccessPolicy {
  return {
    keyName,
    primaryKey: `${secret}-primary`,
    secondaryKey: `${secret}-secondary`,
    rights: ["ServiceConfig", "EnrollmentWrite"],
  };
}

export function makeHub(name: string, secret = "hub-key"): LinkedHub {
  return {
    name,
    connectionString: `HostName=${name};SharedAccessKeyName=iothubowner;SharedAccessKey=${secret}`,
    location: "westeurope",
    allocationWeight: 1,
    applyAllocationPolicy: true,
  };
}

export function makeCa(name: string): CaCertificate {
  const now = nowUtc();
  return {
    name,
    certificatePem: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    subject: `CN=${name}`,
    thumbprint: "A1B2C3D4E5F60718293A4B5C6D7E8F9012345678",
    expiry: "2035-01-01T00:00:00.000Z",
    isVerified: false,
    verificationCode: "0123456789ABCDEF",
    created: now,
    updated: now,
    etag: newEtag(),
  };
}

export function makeEnrollment(id: string, secret = "enrollment-key"): IndividualEnrollment {
  const now = nowUtc();
  return {
    registrationId: registrationId(id),
    deviceId: `dev-${id}`,
    attestation: {
      type: "symmetricKey",
      symmetricKey: { primaryKey: `${secret}-primary`, secondaryKey: `${secret}-secondary` },
    },
    capabilities: { iotEdge: false },
    initialTwin: { tags: { site: "lab" }, properties: { desired: { interval: 30 } } },
    provisioningStatus: "enabled",
    reprovisionPolicy: { updateHubAssignment: true, migrateDeviceData: false },
    allocationPolicy: "static",
    iotHubs: ["hub1.azure-devices.net"],
    optionalDeviceInformation: { model: "x" },
    etag: newEtag(),
    createdDateTimeUtc: now,
    lastUpdatedDateTimeUtc: now,
  };
}

export function makeGroup(id: string, secret = "group-key"): EnrollmentGroup {
  const now = nowUtc();
  return {
    enrollmentGroupId: enrollmentGroupId(id),
    attestation: {
      type: "symmetricKey",
      symmetricKey: { primaryKey: `${secret}-primary`, secondaryKey: `${secret}-secondary` },
    },
    provisioningStatus: "enabled",
    allocationPolicy: "hashed",
    etag: newEtag(),
    createdDateTimeUtc: now,
    lastUpdatedDateTimeUtc: now,
  };
}

/** An X.509 group: no secret at all, the attestation must still round-trip. */
export function makeX509Group(id: string): EnrollmentGroup {
  const g = makeGroup(id);
  g.attestation = {
    type: "x509",
    x509: {
      signingCertificates: {
        primary: {
          info: {
            subjectName: "CN=root",
            sha1Thumbprint: "AA",
            sha256Thumbprint: "BB",
            issuerName: "CN=root",
            notBeforeUtc: "2024-01-01T00:00:00Z",
            notAfterUtc: "2034-01-01T00:00:00Z",
            serialNumber: "01",
            version: 3,
          },
        },
      },
    },
  };
  return g;
}

export function makeRegistration(id: string, groupId?: string): RegistrationRecord {
  const now = nowUtc();
  const r: RegistrationRecord = {
    state: {
      registrationId: registrationId(id),
      createdDateTimeUtc: now,
      assignedHub: "hub1.azure-devices.net",
      deviceId: id,
      status: "assigned",
      substatus: "initialAssignment",
      lastUpdatedDateTimeUtc: now,
      etag: newEtag(),
      payload: { hello: "world" },
    },
  };
  if (groupId !== undefined) r.enrollmentGroupId = enrollmentGroupId(groupId);
  return r;
}

/** One kind of etag-versioned record, so the precondition cases run against each. */
interface Kind<T> {
  label: string;
  make(id: string): T;
  id(r: T): string;
  etag(r: T): string;
  put(s: ProvisioningStore, scope: IdScope, r: T, pre?: Precondition): Promise<WriteResult>;
  get(s: ProvisioningStore, scope: IdScope, id: string): Promise<T | undefined>;
  del(s: ProvisioningStore, scope: IdScope, id: string, pre?: Precondition): Promise<WriteResult>;
}

const kinds: Kind<unknown>[] = [
  {
    label: "enrollment",
    make: makeEnrollment,
    id: (r) => r.registrationId,
    etag: (r) => r.etag,
    put: (s, sc, r, p) => s.putEnrollment(sc, r, p),
    get: (s, sc, id) => s.getEnrollment(sc, id),
    del: (s, sc, id, p) => s.deleteEnrollment(sc, id, p),
  } satisfies Kind<IndividualEnrollment>,
  {
    label: "enrollment group",
    make: makeGroup,
    id: (r) => r.enrollmentGroupId,
    etag: (r) => r.etag,
    put: (s, sc, r, p) => s.putGroup(sc, r, p),
    get: (s, sc, id) => s.getGroup(sc, id),
    del: (s, sc, id, p) => s.deleteGroup(sc, id, p),
  } satisfies Kind<EnrollmentGroup>,
  {
    label: "registration state",
    make: (id) => makeRegistration(id, "group-1"),
    id: (r) => r.state.registrationId,
    etag: (r) => r.state.etag,
    put: (s, sc, r, p) => s.putRegistration(sc, r, p),
    get: (s, sc, id) => s.getRegistration(sc, id),
    del: (s, sc, id, p) => s.deleteRegistration(sc, id, p),
  } satisfies Kind<RegistrationRecord>,
  {
    label: "CA certificate",
    make: makeCa,
    id: (r) => r.name,
    etag: (r) => r.etag,
    put: (s, sc, r, p) => s.putCaCertificate(sc, r, p),
    get: (s, sc, id) => s.getCaCertificate(sc, id),
    del: (s, sc, id, p) => s.deleteCaCertificate(sc, id, p),
  } satisfies Kind<CaCertificate>,
  // The array is heterogeneous; each entry is checked against its own type by `satisfies` above.
] as Kind<unknown>[];

const OK: WriteResult = { ok: true };
const refused = (reason: "exists" | "missing" | "etagMismatch"): WriteResult => ({ ok: false, reason });

/** Ids in mixed case whose lower-cased keys sort differently from their spelling. */
const mixedIds = (n: number): string[] =>
  Array.from({ length: n }, (_, i) => `${i % 2 === 0 ? "Dev" : "dev"}-${String(i).padStart(3, "0")}`);

export function runStoreConformance(name: string, open: () => Promise<StoreFixture>): void {
  describe(`Store conformance: ${name}`, () => {
    let fx: StoreFixture;
    /** The store under test; replaced when a test reopens. */
    let store: ProvisioningStore;
    const A = scopeOf(0xa1);
    const B = scopeOf(0xb2);

    beforeEach(async () => {
      fx = await open();
      store = fx.store;
    });

    afterEach(async () => {
      await store.close();
      await fx.cleanup();
    });

    const withInstance = async (scope = A, name = `svc-${scope.toLowerCase()}`): Promise<Instance> => {
      const i = makeInstance(scope, name);
      assert.deepEqual(await store.createInstance(i, [makePolicy("provisioningserviceowner")]), OK);
      return i;
    };

    describe("instances", () => {
      test("create, get, list, update, delete", async () => {
        const a = await withInstance(A, "alpha");
        const b = await withInstance(B, "beta");
        assert.deepEqual(await store.getInstance(A), a);
        assert.equal(await store.getInstance(scopeOf(0xc3)), undefined);
        const listed = await store.listInstances();
        assert.deepEqual(
          listed.sort((x, y) => x.name.localeCompare(y.name)),
          [a, b],
        );

        const a2: Instance = { ...a, allocationPolicy: "static", etag: newEtag() };
        assert.deepEqual(await store.updateInstance(a2, { etag: a.etag }), OK);
        assert.deepEqual(await store.getInstance(A), a2);
        assert.deepEqual(
          await store.updateInstance({ ...a2, etag: newEtag() }, { etag: a.etag }),
          refused("etagMismatch"),
        );
        const a3: Instance = { ...a2, allocationPolicy: "geoLatency", etag: newEtag() };
        assert.deepEqual(await store.updateInstance(a3, { etag: "*" }), OK);
        const a4: Instance = { ...a3, allocationPolicy: "hashed", etag: newEtag() };
        assert.deepEqual(await store.updateInstance(a4), OK);
        assert.deepEqual(await store.getInstance(A), a4);

        assert.deepEqual(await store.updateInstance(makeInstance(scopeOf(0xc3), "gamma")), refused("missing"));
        assert.equal(await store.getInstance(scopeOf(0xc3)), undefined);

        assert.equal(await store.deleteInstance(A), true);
        assert.equal(await store.getInstance(A), undefined);
        assert.equal(await store.deleteInstance(A), false);
        assert.deepEqual(await store.listInstances(), [b]);
      });

      test("scope, name and host name are unique (names case-insensitively)", async () => {
        const a = await withInstance(A, "alpha");
        assert.deepEqual(await store.createInstance(makeInstance(A, "other"), []), refused("exists"));
        assert.deepEqual(await store.createInstance(makeInstance(B, "ALPHA"), []), refused("exists"));
        const sameHost: Instance = { ...makeInstance(B, "other"), hostName: a.hostName.toUpperCase() };
        assert.deepEqual(await store.createInstance(sameHost, []), refused("exists"));
        assert.deepEqual(await store.listInstances(), [a]);
        // A refused create left nothing behind, policies included.
        assert.deepEqual(await store.listPolicies(B), []);

        const b = await withInstance(B, "beta");
        assert.deepEqual(await store.updateInstance({ ...b, name: "Alpha" }), refused("exists"));
        assert.deepEqual(await store.updateInstance({ ...b, hostName: a.hostName }), refused("exists"));
        // Renaming to a different spelling of its own name is fine.
        const renamed: Instance = { ...b, name: "BETA", etag: newEtag() };
        assert.deepEqual(await store.updateInstance(renamed), OK);
        assert.deepEqual(await store.getInstance(B), renamed);
      });

      test("deleting an instance removes every record it owns", async () => {
        await withInstance(A);
        await store.replaceLinkedHubs(A, [makeHub("hub1.azure-devices.net")]);
        assert.deepEqual(await store.putCaCertificate(A, makeCa("root")), OK);
        assert.deepEqual(await store.putEnrollment(A, makeEnrollment("dev-1")), OK);
        assert.deepEqual(await store.putGroup(A, makeGroup("group-1")), OK);
        assert.deepEqual(await store.putRegistration(A, makeRegistration("dev-2", "group-1")), OK);

        assert.equal(await store.deleteInstance(A), true);
        await withInstance(A);
        assert.deepEqual(
          (await store.listPolicies(A)).map((p) => p.keyName),
          ["provisioningserviceowner"],
        );
        assert.deepEqual(await store.listLinkedHubs(A), []);
        assert.deepEqual(await store.listCaCertificates(A), []);
        assert.equal(await store.getEnrollment(A, "dev-1"), undefined);
        assert.equal(await store.getGroup(A, "group-1"), undefined);
        assert.equal(await store.getRegistration(A, "dev-2"), undefined);
        assert.deepEqual(await store.listEnrollments(A, { limit: 10 }), { items: [] });
        assert.deepEqual(await store.listGroups(A, { limit: 10 }), { items: [] });
        assert.deepEqual(await store.listRegistrationsOfGroup(A, "group-1", { limit: 10 }), { items: [] });
      });

      test("writing a record of an instance that does not exist fails", async () => {
        await assert.rejects(store.putEnrollment(A, makeEnrollment("dev-1")));
        await assert.rejects(store.replaceLinkedHubs(A, [makeHub("hub1.azure-devices.net")]));
      });
    });

    describe("policies and linked hubs", () => {
      test("policies: created with the instance, looked up case-insensitively, replaced as a set", async () => {
        const i = makeInstance(A, "alpha");
        const owner = makePolicy("ProvisioningServiceOwner");
        const reader = makePolicy("enrollmentRead");
        assert.deepEqual(await store.createInstance(i, [owner, reader]), OK);
        assert.deepEqual(await store.listPolicies(A), [reader, owner]); // by lower-cased key name
        assert.deepEqual(await store.getPolicy(A, "provisioningserviceOWNER"), owner);
        assert.equal(await store.getPolicy(A, "nope"), undefined);

        const owner2: AccessPolicy = {
          ...makePolicy("PROVISIONINGSERVICEOWNER", "rotated"),
          rights: ["ServiceConfig"],
        };
        const device = makePolicy("device");
        await store.replacePolicies(A, [owner2, device]);
        assert.deepEqual(await store.listPolicies(A), [device, owner2]);
        assert.equal(await store.getPolicy(A, "enrollmentread"), undefined);
        assert.deepEqual(await store.getPolicy(A, "ProvisioningServiceOwner"), owner2);

        await store.replacePolicies(A, []);
        assert.deepEqual(await store.listPolicies(A), []);
      });

      test("an instance is created and updated together with its policies and hubs, or not at all", async () => {
        const owner = makePolicy("owner");
        const hub1 = makeHub("hub1.azure-devices.net");
        const a = makeInstance(A, "alpha");
        assert.deepEqual(await store.createInstance(a, [owner], [hub1]), OK);
        assert.deepEqual(await store.listPolicies(A), [owner]);
        assert.deepEqual(await store.listLinkedHubs(A), [hub1]);

        // A refused create (taken name) writes neither policies nor hubs for its scope.
        const clash = makeInstance(B, "ALPHA");
        assert.deepEqual(await store.createInstance(clash, [makePolicy("other")], [hub1]), refused("exists"));
        assert.deepEqual(await store.listPolicies(B), []);
        assert.deepEqual(await store.listLinkedHubs(B), []);

        const reader = makePolicy("reader");
        const hub2 = makeHub("hub2.azure-devices.net");
        const a2: Instance = { ...a, allocationPolicy: "static", etag: newEtag() };
        // A refused update leaves the instance, its policies and its hubs as they were.
        assert.deepEqual(
          await store.updateInstance(a2, { etag: "stale" }, { policies: [reader], hubs: [hub2] }),
          refused("etagMismatch"),
        );
        assert.deepEqual(await store.getInstance(A), a);
        assert.deepEqual(await store.listPolicies(A), [owner]);
        assert.deepEqual(await store.listLinkedHubs(A), [hub1]);

        assert.deepEqual(await store.updateInstance(a2, { etag: a.etag }, { policies: [reader], hubs: [hub2] }), OK);
        assert.deepEqual(await store.getInstance(A), a2);
        assert.deepEqual(await store.listPolicies(A), [reader]);
        assert.deepEqual(await store.listLinkedHubs(A), [hub2]);

        // Parts not given stay.
        const a3: Instance = { ...a2, allocationPolicy: "hashed", etag: newEtag() };
        assert.deepEqual(await store.updateInstance(a3, { etag: a2.etag }, { hubs: [] }), OK);
        assert.deepEqual(await store.listPolicies(A), [reader]);
        assert.deepEqual(await store.listLinkedHubs(A), []);
      });

      test("linked hubs: replaced as a set, listed by lower-cased name", async () => {
        await withInstance(A);
        assert.deepEqual(await store.listLinkedHubs(A), []);
        const h1 = makeHub("Zeta.azure-devices.net");
        const h2 = makeHub("alpha.azure-devices.net");
        await store.replaceLinkedHubs(A, [h1, h2]);
        assert.deepEqual(await store.listLinkedHubs(A), [h2, h1]);

        const h3: LinkedHub = {
          ...makeHub("beta.azure-devices.net"),
          allocationWeight: 3,
          applyAllocationPolicy: false,
        };
        await store.replaceLinkedHubs(A, [h3]);
        assert.deepEqual(await store.listLinkedHubs(A), [h3]);
        await store.replaceLinkedHubs(A, []);
        assert.deepEqual(await store.listLinkedHubs(A), []);
      });

      test("CA certificates are listed by lower-cased name", async () => {
        await withInstance(A);
        const c1 = makeCa("Root-B");
        const c2 = makeCa("root-a");
        await store.putCaCertificate(A, c1);
        await store.putCaCertificate(A, c2);
        assert.deepEqual(await store.listCaCertificates(A), [c2, c1]);
      });

      test("addCaCertificate: refuses a taken name ('exists', any spelling) and past the limit ('full')", async () => {
        await withInstance(A);
        await withInstance(B);
        assert.deepEqual(await store.addCaCertificate(A, makeCa("one"), 2), OK);
        assert.deepEqual(await store.addCaCertificate(A, makeCa("ONE"), 2), refused("exists"));
        assert.deepEqual(await store.addCaCertificate(A, makeCa("two"), 2), OK);
        assert.deepEqual(await store.addCaCertificate(A, makeCa("three"), 2), { ok: false, reason: "full" });
        // A taken name stays "exists" when the store is full too; other instances count their own.
        assert.deepEqual(await store.addCaCertificate(A, makeCa("two"), 2), refused("exists"));
        assert.deepEqual(await store.addCaCertificate(B, makeCa("three"), 2), OK);
        assert.deepEqual(
          (await store.listCaCertificates(A)).map((c) => c.name),
          ["one", "two"],
        );
        // Concurrent adds cannot overshoot: exactly `limit` of them land.
        const results = await Promise.all(
          Array.from({ length: 6 }, (_, i) => store.addCaCertificate(B, makeCa(`race-${i}`), 4)),
        );
        assert.equal(results.filter((r) => r.ok).length, 3);
        assert.equal((await store.listCaCertificates(B)).length, 4);
      });
    });

    for (const kind of kinds) {
      describe(`${kind.label}: preconditions`, () => {
        beforeEach(() => withInstance(A).then(() => undefined));

        test("{absent} creates once, then refuses with 'exists' (any spelling)", async () => {
          const r = kind.make("Dev-One");
          assert.deepEqual(await kind.put(store, A, r, { absent: true }), OK);
          assert.deepEqual(await kind.get(store, A, "Dev-One"), r);
          assert.deepEqual(await kind.put(store, A, kind.make("DEV-ONE"), { absent: true }), refused("exists"));
          assert.deepEqual(await kind.get(store, A, "dev-one"), r);
        });

        test("{etag} replaces on a match and refuses a mismatch", async () => {
          const r1 = kind.make("dev-1");
          assert.deepEqual(await kind.put(store, A, r1), OK);
          const r2 = kind.make("dev-1");
          assert.deepEqual(await kind.put(store, A, r2, { etag: kind.etag(r1) }), OK);
          assert.deepEqual(await kind.get(store, A, "dev-1"), r2);
          // r1's etag is stale now.
          assert.deepEqual(
            await kind.put(store, A, kind.make("dev-1"), { etag: kind.etag(r1) }),
            refused("etagMismatch"),
          );
          assert.deepEqual(await kind.get(store, A, "dev-1"), r2);
          // A quoted If-Match value is the same etag.
          const r3 = kind.make("dev-1");
          assert.deepEqual(await kind.put(store, A, r3, { etag: `"${kind.etag(r2)}"` }), OK);
          assert.deepEqual(await kind.get(store, A, "dev-1"), r3);
        });

        test("{etag: '*'} matches any existing version, but not a missing record", async () => {
          const r1 = kind.make("dev-1");
          assert.deepEqual(await kind.put(store, A, kind.make("dev-2"), { etag: "*" }), refused("missing"));
          assert.equal(await kind.get(store, A, "dev-2"), undefined);
          assert.deepEqual(await kind.put(store, A, r1), OK);
          const r2 = kind.make("DEV-1");
          assert.deepEqual(await kind.put(store, A, r2, { etag: "*" }), OK);
          assert.deepEqual(await kind.get(store, A, "dev-1"), r2);
        });

        test("{etag} on a missing record refuses with 'missing'", async () => {
          assert.deepEqual(await kind.put(store, A, kind.make("dev-1"), { etag: newEtag() }), refused("missing"));
          assert.equal(await kind.get(store, A, "dev-1"), undefined);
        });

        test("no precondition upserts", async () => {
          const r1 = kind.make("dev-1");
          assert.deepEqual(await kind.put(store, A, r1), OK);
          const r2 = kind.make("Dev-1");
          assert.deepEqual(await kind.put(store, A, r2), OK);
          // The latest spelling wins; it is one record.
          assert.deepEqual(await kind.get(store, A, "DEV-1"), r2);
        });

        test("delete: missing, mismatch, match, '*', unconditional", async () => {
          assert.deepEqual(await kind.del(store, A, "dev-1"), refused("missing"));
          assert.deepEqual(await kind.del(store, A, "dev-1", { etag: "*" }), refused("missing"));
          const r = kind.make("Dev-1");
          await kind.put(store, A, r);
          assert.deepEqual(await kind.del(store, A, "dev-1", { etag: newEtag() }), refused("etagMismatch"));
          assert.deepEqual(await kind.get(store, A, "dev-1"), r);
          assert.deepEqual(await kind.del(store, A, "DEV-1", { etag: kind.etag(r) }), OK);
          assert.equal(await kind.get(store, A, "dev-1"), undefined);

          await kind.put(store, A, kind.make("dev-2"));
          assert.deepEqual(await kind.del(store, A, "dev-2", { etag: "*" }), OK);
          await kind.put(store, A, kind.make("dev-3"));
          assert.deepEqual(await kind.del(store, A, "dev-3"), OK);
          assert.equal(await kind.get(store, A, "dev-3"), undefined);
          assert.deepEqual(await kind.del(store, A, "dev-3"), refused("missing"));
        });
      });
    }

    describe("records", () => {
      test("a record round-trips exactly and lookup is case-insensitive", async () => {
        await withInstance(A);
        const e = makeEnrollment("My-Device.01");
        await store.putEnrollment(A, e);
        const got = await store.getEnrollment(A, "my-device.01");
        assert.deepEqual(got, e);
        assert.equal(got?.registrationId, "My-Device.01");

        const g = makeX509Group("Group:X509");
        await store.putGroup(A, g);
        assert.deepEqual(await store.getGroup(A, "GROUP:x509"), g);
        const plain = makeGroup("tpm-group");
        plain.attestation = { type: "tpm", tpm: { endorsementKey: "AToAAQALAAMAsgAg" } };
        await store.putGroup(A, plain);
        assert.deepEqual(await store.getGroup(A, "tpm-group"), plain);
      });

      test("enrollments page in key order across several pages", async () => {
        await withInstance(A);
        assert.deepEqual(await store.listEnrollments(A, { limit: 10 }), { items: [] });
        const ids = mixedIds(25);
        // Insert out of order.
        for (const id of [...ids].reverse()) assert.deepEqual(await store.putEnrollment(A, makeEnrollment(id)), OK);
        const expected = [...ids].sort((x, y) => (idKey(x) < idKey(y) ? -1 : 1));

        const seen: string[] = [];
        const sizes: number[] = [];
        let after: string | undefined;
        for (let guard = 0; guard < 10; guard++) {
          const page = await store.listEnrollments(A, after === undefined ? { limit: 10 } : { after, limit: 10 });
          sizes.push(page.items.length);
          seen.push(...page.items.map((e) => e.registrationId));
          const last = page.items[page.items.length - 1];
          if (page.next === undefined) {
            assert.equal("next" in page, false, "no next key on the last page");
            break;
          }
          assert.equal(page.next, last && idKey(last.registrationId));
          after = page.next;
        }
        assert.deepEqual(sizes, [10, 10, 5]);
        assert.deepEqual(seen, expected);

        // `after` is exclusive, and need not be an existing key.
        const tail = await store.listEnrollments(A, { after: idKey(expected[22] ?? ""), limit: 10 });
        assert.deepEqual(
          tail.items.map((e) => e.registrationId),
          expected.slice(23),
        );
        const fromGap = await store.listEnrollments(A, { after: "dev-010a", limit: 2 });
        assert.deepEqual(
          fromGap.items.map((e) => idKey(e.registrationId)),
          ["dev-011", "dev-012"],
        );
        assert.equal(fromGap.next, "dev-012");
      });

      test("a last page that is exactly full has no next key", async () => {
        await withInstance(A);
        for (const id of mixedIds(4)) await store.putGroup(A, makeGroup(id));
        const first = await store.listGroups(A, { limit: 2 });
        assert.equal(first.items.length, 2);
        assert.equal(first.next, "dev-001");
        const second = await store.listGroups(A, { after: first.next, limit: 2 });
        assert.deepEqual(
          second.items.map((g) => g.enrollmentGroupId),
          ["Dev-002", "dev-003"],
        );
        assert.equal(second.next, undefined);
        assert.deepEqual(await store.listGroups(A, { after: "dev-003", limit: 2 }), { items: [] });
        const all = await store.listGroups(A, { limit: 100 });
        assert.equal(all.items.length, 4);
        assert.equal(all.next, undefined);
      });

      test("registration states list by group, case-insensitively, only that group's", async () => {
        await withInstance(A);
        const ofG1 = mixedIds(5).map((id) => makeRegistration(id, "Group-1"));
        for (const r of ofG1) await store.putRegistration(A, r);
        await store.putRegistration(A, makeRegistration("other-1", "group-2"));
        await store.putRegistration(A, makeRegistration("solo-1"));

        const p1 = await store.listRegistrationsOfGroup(A, "GROUP-1", { limit: 3 });
        assert.deepEqual(p1.items, ofG1.slice(0, 3));
        assert.equal(p1.next, "dev-002");
        const p2 = await store.listRegistrationsOfGroup(A, "group-1", { after: p1.next, limit: 3 });
        assert.deepEqual(p2.items, ofG1.slice(3));
        assert.equal(p2.next, undefined);

        assert.deepEqual(
          (await store.listRegistrationsOfGroup(A, "group-2", { limit: 10 })).items.map((r) => r.state.registrationId),
          ["other-1"],
        );
        assert.deepEqual(await store.listRegistrationsOfGroup(A, "group-3", { limit: 10 }), { items: [] });
        // Every record of the service, by id, whatever its group.
        const all = await store.listRegistrations(A, { limit: 6 });
        assert.deepEqual(
          all.items.map((r) => r.state.registrationId),
          ["Dev-000", "dev-001", "Dev-002", "dev-003", "Dev-004", "other-1"],
        );
        assert.equal(all.next, "other-1");
        const rest = await store.listRegistrations(A, { after: all.next, limit: 6 });
        assert.deepEqual(
          rest.items.map((r) => r.state.registrationId),
          ["solo-1"],
        );
        assert.equal((await store.getRegistration(A, "SOLO-1"))?.enrollmentGroupId, undefined);

        // Moving a state to another group moves it between the lists.
        await store.putRegistration(A, makeRegistration("dev-000", "group-2"));
        assert.equal((await store.listRegistrationsOfGroup(A, "group-1", { limit: 10 })).items.length, 4);
        assert.equal((await store.listRegistrationsOfGroup(A, "group-2", { limit: 10 })).items.length, 2);
        assert.deepEqual(await store.deleteRegistration(A, "Dev-000"), OK);
        assert.equal((await store.listRegistrationsOfGroup(A, "group-2", { limit: 10 })).items.length, 1);
      });

      test("two instances are isolated", async () => {
        await withInstance(A, "alpha");
        await withInstance(B, "beta");
        const ea = makeEnrollment("shared-id", "key-a");
        const eb = makeEnrollment("Shared-Id", "key-b");
        assert.deepEqual(await store.putEnrollment(A, ea, { absent: true }), OK);
        assert.deepEqual(await store.putEnrollment(B, eb, { absent: true }), OK);
        await store.putGroup(A, makeGroup("g"));
        await store.putRegistration(A, makeRegistration("shared-id", "g"));
        await store.putRegistration(B, makeRegistration("shared-id", "g"));
        await store.replaceLinkedHubs(A, [makeHub("hub-a.azure-devices.net")]);
        await store.putCaCertificate(A, makeCa("root"));

        assert.deepEqual(await store.getEnrollment(A, "shared-id"), ea);
        assert.deepEqual(await store.getEnrollment(B, "shared-id"), eb);
        assert.equal(await store.getGroup(B, "g"), undefined);
        assert.deepEqual(await store.listLinkedHubs(B), []);
        assert.deepEqual(await store.listCaCertificates(B), []);
        assert.equal((await store.listRegistrationsOfGroup(B, "g", { limit: 10 })).items.length, 1);

        assert.deepEqual(await store.deleteEnrollment(A, "shared-id", { etag: ea.etag }), OK);
        assert.deepEqual(await store.getEnrollment(B, "shared-id"), eb);
        assert.deepEqual((await store.listEnrollments(B, { limit: 10 })).items, [eb]);
        assert.deepEqual(await store.listEnrollments(A, { limit: 10 }), { items: [] });

        assert.equal(await store.deleteInstance(A), true);
        assert.deepEqual(await store.getEnrollment(B, "shared-id"), eb);
        assert.ok(await store.getRegistration(B, "shared-id"));
      });
    });

    describe("the device path", () => {
      const operation = (id: string, status: RegistrationOperation["status"], created = nowUtc()) =>
        ({
          operationId: id,
          registrationId: "dev-1",
          status,
          registrationState: { registrationId: "dev-1", status },
          createdDateTimeUtc: created,
        }) satisfies RegistrationOperation;

      test("operations: {absent} writes once, a plain put replaces, get by id within the scope", async () => {
        await withInstance(A, "alpha");
        await withInstance(B, "beta");
        const assigning = operation("4.0000000000000001.op-1", "assigning");
        assert.deepEqual(await store.putOperation(A, assigning, { absent: true }), OK);
        assert.deepEqual(await store.getOperation(A, assigning.operationId), assigning);
        assert.equal(await store.getOperation(B, assigning.operationId), undefined, "operations are per scope");
        // A late "assigning" never overwrites a final result.
        const final = operation(assigning.operationId, "assigned");
        assert.deepEqual(await store.putOperation(A, final), OK);
        assert.deepEqual(await store.putOperation(A, assigning, { absent: true }), refused("exists"));
        assert.deepEqual(await store.getOperation(A, assigning.operationId), final);
        assert.equal(await store.getOperation(A, "4.0000000000000001.unknown"), undefined);
      });

      test("commitRegistration writes the record and the final operation together", async () => {
        await withInstance();
        const r = makeRegistration("dev-1", "group-1");
        const op = operation("4.0000000000000002.op-2", "assigned");
        await store.commitRegistration(A, r, op);
        assert.deepEqual(await store.getRegistration(A, "DEV-1"), r);
        assert.deepEqual(await store.getOperation(A, op.operationId), op);
        // Committing again replaces both (a later registration of the same device).
        const again = { ...makeRegistration("dev-1", "group-1"), webhookCalls: [{ attempt: 1 }] };
        const op2 = operation("4.0000000000000003.op-3", "failed");
        await store.commitRegistration(A, again, op2);
        assert.deepEqual(await store.getRegistration(A, "dev-1"), again);
        assert.deepEqual(await store.getOperation(A, op.operationId), op, "the earlier operation stays answerable");
        assert.deepEqual(await store.getOperation(A, op2.operationId), op2);
        // A commit for an instance that does not exist fails, and writes neither part.
        await assert.rejects(store.commitRegistration(B, r, operation("4.0000000000000004.op-4", "assigned")));
        assert.equal(await store.getOperation(B, "4.0000000000000004.op-4"), undefined);
        assert.equal(await store.getRegistration(B, "dev-1"), undefined);
      });

      test("an operation's carrier round-trips, is renewed per node, and a final result clears it", async () => {
        await withInstance();
        const carried = (id: string, node: string) => ({
          ...operation(id, "assigning"),
          carrier: { node, until: "2030-01-01T00:00:00.000Z" },
        });
        const mine = carried("4.0000000000000007.mine", "node-a");
        const theirs = carried("4.0000000000000008.theirs", "node-b");
        await store.putOperation(A, mine, { absent: true });
        await store.putOperation(A, theirs, { absent: true });
        assert.deepEqual(await store.getOperation(A, mine.operationId), mine);
        await store.renewCarrier("node-a", "2031-01-01T00:00:00.000Z");
        assert.equal((await store.getOperation(A, mine.operationId))?.carrier?.until, "2031-01-01T00:00:00.000Z");
        assert.deepEqual(await store.getOperation(A, theirs.operationId), theirs, "another node's lease is untouched");
        const final = operation(mine.operationId, "assigned");
        await store.commitRegistration(A, makeRegistration("dev-7"), final);
        assert.deepEqual(await store.getOperation(A, mine.operationId), final);
        await store.putOperation(A, operation(theirs.operationId, "failed"));
        assert.equal((await store.getOperation(A, theirs.operationId))?.carrier, undefined);
      });

      test("hub intents: claimed once their lease ended, not while the device has another under way; settled by the commit", async () => {
        await withInstance();
        const intent = (operationId: string, registrationId: string, node: string, until: string): HubIntent => ({
          operationId,
          registrationId,
          target: { hubName: "hub1.azure-devices.net", deviceId: registrationId },
          previous: { hubName: "hub0.azure-devices.net", deviceId: registrationId },
          carrier: { node, until },
        });
        const past = "2020-01-01T00:00:00.000Z";
        const now = "2025-01-01T00:00:00.000Z";
        const future = "2030-01-01T00:00:00.000Z";
        const dead = intent("4.1.dead", "dev-a", "node-dead", past);
        await store.putHubIntent(A, dead);
        await store.putHubIntent(A, intent("4.1.alive", "dev-b", "node-a", future));
        // dev-c: an old intent, but a newer registration of the same device is under way.
        await store.putHubIntent(A, intent("4.1.old", "dev-c", "node-dead", past));
        await store.putHubIntent(A, intent("4.1.new", "DEV-C", "node-a", future));
        const claimed = await store.claimHubIntents("node-z", future, now, 10);
        assert.deepEqual(claimed, [{ idScope: A, intent: { ...dead, carrier: { node: "node-z", until: future } } }]);
        assert.deepEqual(await store.claimHubIntents("node-y", future, now, 10), [], "claimed once");
        // Renewal keeps node-a's intents out of reach; a commit settles each way.
        await store.renewCarrier("node-a", "2031-01-01T00:00:00.000Z");
        await store.commitRegistration(A, makeRegistration("dev-b"), operation("4.1.alive", "assigned"), {
          releaseUntil: past,
        });
        const released = await store.claimHubIntents("node-y", future, now, 10);
        assert.deepEqual(
          released.map((c) => c.intent.operationId),
          ["4.1.alive"],
        );
        await store.commitRegistration(A, makeRegistration("dev-c"), operation("4.1.new", "assigned"), "keep");
        await store.deleteHubIntent(A, "4.1.new");
        assert.deepEqual(
          (await store.claimHubIntents("node-x", future, now, 10)).map((c) => c.intent.operationId),
          ["4.1.old"],
          "with the newer registration over, the old intent is free",
        );
        await store.commitRegistration(A, makeRegistration("dev-d"), operation("4.1.gone", "assigned"));
        await store.putHubIntent(A, intent("4.1.done", "dev-d", "node-a", past));
        await store.commitRegistration(A, makeRegistration("dev-d"), operation("4.1.done", "assigned"));
        assert.deepEqual(await store.claimHubIntents("node-x", future, future, 10), [], "a commit deletes by default");
      });

      test("readDevice returns a device's enrollment and record together, either absent, any case", async () => {
        await withInstance();
        assert.deepEqual(await store.readDevice(A, "dev-9"), { enrollment: undefined, registration: undefined });
        const e = makeEnrollment("dev-9");
        await store.putEnrollment(A, e);
        assert.deepEqual(await store.readDevice(A, "DEV-9"), { enrollment: e, registration: undefined });
        const r = makeRegistration("dev-9");
        await store.putRegistration(A, r);
        assert.deepEqual(await store.readDevice(A, "dev-9"), { enrollment: e, registration: r });
        await store.deleteEnrollment(A, "dev-9");
        assert.deepEqual(await store.readDevice(A, "dev-9"), { enrollment: undefined, registration: r });
      });

      test("operations created before a cutoff are swept; later ones stay", async () => {
        await withInstance();
        await store.putOperation(A, operation("4.0000000000000005.old", "assigned", "2020-01-01T00:00:00.000Z"));
        await store.putOperation(A, operation("4.0000000000000006.new", "assigned", "2030-01-01T00:00:00.000Z"));
        assert.equal(await store.deleteOperationsBefore("2025-01-01T00:00:00.000Z"), 1);
        assert.equal(await store.getOperation(A, "4.0000000000000005.old"), undefined);
        assert.ok(await store.getOperation(A, "4.0000000000000006.new"));
        assert.equal(await store.deleteOperationsBefore("2025-01-01T00:00:00.000Z"), 0);
        // Old but still carried: it stays while its carrier's lease runs, and goes once it ended.
        const carried = {
          ...operation("4.0000000000000009.carried", "assigning", "2020-01-01T00:00:00.000Z"),
          carrier: { node: "node-a", until: "2026-01-01T00:00:00.000Z" },
        };
        await store.putOperation(A, carried);
        assert.equal(await store.deleteOperationsBefore("2025-01-01T00:00:00.000Z"), 0);
        assert.equal(await store.deleteOperationsBefore("2027-01-01T00:00:00.000Z"), 1);
      });

      test("a TPM challenge: one a device (any case), the latest replaces it, per scope", async () => {
        await withInstance(A, "alpha");
        await withInstance(B, "beta");
        const first = { key: "a2V5LTE=", endorsementKeyHash: "ab".repeat(32), expiresAt: "2030-01-01T00:00:00.000Z" };
        await store.putTpmChallenge(A, "Tpm-Dev", first);
        assert.deepEqual(await store.getTpmChallenge(A, "tpm-dev"), first);
        assert.equal(await store.getTpmChallenge(B, "tpm-dev"), undefined, "challenges are per scope");
        const second = { ...first, key: "a2V5LTI=" };
        await store.putTpmChallenge(A, "tpm-dev", second);
        assert.deepEqual(await store.getTpmChallenge(A, "TPM-DEV"), second);
      });

      test("readScope returns the scope's groups, linked hubs and CA certificates, and nothing of others", async () => {
        await withInstance(A, "alpha");
        await withInstance(B, "beta");
        const g = makeGroup("Group-1");
        const hub = makeHub("hub1.azure-devices.net");
        const ca = makeCa("root");
        await store.putGroup(A, g);
        await store.replaceLinkedHubs(A, [hub]);
        await store.putCaCertificate(A, ca);
        assert.deepEqual(await store.readScope(A), { groups: [g], linkedHubs: [hub], caCertificates: [ca] });
        assert.deepEqual(await store.readScope(B), { groups: [], linkedHubs: [], caCertificates: [] });
      });
    });

    describe("changes are announced after they are committed", () => {
      test("instances, groups, linked hubs, policies and CA certificates; refused writes announce nothing", async () => {
        const heard: StoreChange[] = [];
        const stop = store.changes.subscribe((c) => {
          heard.push(c);
        });
        const i = await withInstance(A, "alpha");
        const g = makeGroup("group-1");
        await store.putGroup(A, g, { absent: true });
        await store.putGroup(A, g, { absent: true }); // refused: nothing to announce
        await store.replaceLinkedHubs(A, [makeHub("hub1.azure-devices.net")]);
        await store.replacePolicies(A, [makePolicy("owner")]);
        const ca = makeCa("root");
        await store.addCaCertificate(A, ca, 25);
        await store.putCaCertificate(A, { ...ca, isVerified: true });
        await store.deleteCaCertificate(A, "root");
        await store.deleteGroup(A, "group-1");
        await store.putEnrollment(A, makeEnrollment("dev-1")); // read per registration: not announced
        const updated = { ...i, allocationPolicy: "geoLatency" as const, etag: newEtag() };
        await store.updateInstance(updated);
        await store.deleteInstance(A);
        stop();
        await store.putGroup(B, makeGroup("unheard")).catch(() => undefined);
        assert.deepEqual(heard, [
          { kind: "instance", idScope: A, instance: i },
          { kind: "scope", idScope: A, what: "groups" },
          { kind: "scope", idScope: A, what: "linkedHubs" },
          { kind: "scope", idScope: A, what: "policies" },
          { kind: "scope", idScope: A, what: "caCertificates" },
          { kind: "scope", idScope: A, what: "caCertificates" },
          { kind: "scope", idScope: A, what: "caCertificates" },
          { kind: "scope", idScope: A, what: "groups" },
          { kind: "instance", idScope: A, instance: updated },
          { kind: "instance", idScope: A },
        ]);
      });

      test("a write resolves only after its listeners have taken the change in", async () => {
        let settled = false;
        store.changes.subscribe(async () => {
          await new Promise((r) => setTimeout(r, 20));
          settled = true;
        });
        await withInstance();
        assert.equal(settled, true);
      });
    });

    describe("built-in hub devices", () => {
      const device = (id: string, note = "x"): HubDeviceRecord =>
        ({
          identity: {
            deviceId: id,
            generationId: "1",
            etag: "MA==",
            status: "enabled",
            statusReason: note,
            statusUpdatedTime: "0001-01-01T00:00:00Z",
            connectionState: "Disconnected",
            connectionStateUpdatedTime: "0001-01-01T00:00:00Z",
            lastActivityTime: "0001-01-01T00:00:00Z",
            cloudToDeviceMessageCount: 0,
            authentication: {
              type: "sas",
              symmetricKey: { primaryKey: "cHJpbWFyeQ==", secondaryKey: "c2Vjb25kYXJ5" },
              x509Thumbprint: { primaryThumbprint: null, secondaryThumbprint: null },
            },
            capabilities: { iotEdge: false },
          },
          twin: {
            etag: "AAAAAAAAAAE=",
            etagCounter: 1,
            version: 1,
            tags: {},
            desired: { properties: {}, metadata: { $lastUpdated: "2026-01-01T00:00:00Z" }, version: 1 },
            reported: { properties: {}, metadata: { $lastUpdated: "2026-01-01T00:00:00Z" }, version: 1 },
          },
          rowVersion: 0,
        }) satisfies HubDeviceRecord;

      test("create once, update at the expected version only, delete; ids are case-sensitive", async () => {
        const { hubs } = fx;
        assert.deepEqual(await hubs.putHubDevice("hub-1", device("Dev-1"), "absent"), OK);
        assert.deepEqual(await hubs.putHubDevice("hub-1", device("Dev-1"), "absent"), refused("exists"));
        const stored = await hubs.getHubDevice("hub-1", "Dev-1");
        assert.equal(stored?.rowVersion, 1);
        assert.equal(await hubs.getHubDevice("hub-1", "dev-1"), undefined, "device ids are case-sensitive");
        assert.equal((await hubs.getHubDevice("HUB-1", "Dev-1")) !== undefined, true, "hub names are not");
        assert.deepEqual(await hubs.putHubDevice("hub-1", device("Dev-1", "second"), 1), OK);
        assert.deepEqual(await hubs.putHubDevice("hub-1", device("Dev-1", "stale"), 1), refused("etagMismatch"));
        assert.equal((await hubs.getHubDevice("hub-1", "Dev-1"))?.identity.statusReason, "second");
        assert.equal((await hubs.getHubDevice("hub-1", "Dev-1"))?.rowVersion, 2);
        assert.deepEqual(await hubs.putHubDevice("hub-1", device("nobody"), 1), refused("missing"));
        assert.deepEqual(
          await hubs.getHubDevice("hub-1", "Dev-1").then((d) => d?.identity.authentication),
          device("x").identity.authentication,
        );
        assert.equal(await hubs.getHubDevice("hub-2", "Dev-1"), undefined, "hubs are separate");
        assert.equal(await hubs.deleteHubDevice("hub-1", "Dev-1"), true);
        assert.equal(await hubs.deleteHubDevice("hub-1", "Dev-1"), false);
      });

      test("devices page in id order", async () => {
        const { hubs } = fx;
        for (const id of ["c", "a", "B", "b"]) await hubs.putHubDevice("hub-1", device(id), "absent");
        const first = await hubs.listHubDevices("hub-1", { limit: 3 });
        assert.deepEqual(
          first.items.map((d) => d.identity.deviceId),
          ["B", "a", "b"],
        );
        assert.ok(first.next);
        const second = await hubs.listHubDevices("hub-1", { limit: 3, after: first.next });
        assert.deepEqual(
          second.items.map((d) => d.identity.deviceId),
          ["c"],
        );
        assert.equal(second.next, undefined);
      });

      test("built-in hub configurations round-trip with their policy keys", async () => {
        const { hubs } = fx;
        const hub = {
          name: "hub-1",
          hostName: "hub-1.localhost",
          policies: [
            {
              keyName: "iothubowner",
              primaryKey: "a2V5MQ==",
              secondaryKey: "a2V5Mg==",
              rights: ["RegistryRead" as const],
            },
          ],
        };
        await hubs.putBuiltinHub(hub);
        assert.deepEqual(await hubs.listBuiltinHubs(), [hub]);
      });
    });

    test("data persists across reopen", async (t) => {
      const reopen = fx.reopen;
      if (!reopen) return t.skip("no reopen for this store");
      const i = makeInstance(A, "alpha");
      const policies = [makePolicy("owner")];
      const hubs = [makeHub("hub1.azure-devices.net")];
      const ca = makeCa("root");
      const e = makeEnrollment("dev-1");
      const g = makeGroup("group-1");
      const r = makeRegistration("dev-2", "group-1");
      await store.createInstance(i, policies);
      await store.replaceLinkedHubs(A, hubs);
      await store.putCaCertificate(A, ca);
      await store.putEnrollment(A, e);
      await store.putGroup(A, g);
      await store.putRegistration(A, r);
      await store.close();

      store = await reopen();
      assert.deepEqual(await store.listInstances(), [i]);
      assert.deepEqual(await store.listPolicies(A), policies);
      assert.deepEqual(await store.listLinkedHubs(A), hubs);
      assert.deepEqual(await store.getCaCertificate(A, "root"), ca);
      assert.deepEqual(await store.getEnrollment(A, "dev-1"), e);
      assert.deepEqual(await store.getGroup(A, "group-1"), g);
      assert.deepEqual((await store.listRegistrationsOfGroup(A, "group-1", { limit: 5 })).items, [r]);
    });

    describe("the audit trail", () => {
      const event = (n: number, service = "alpha", caller = "owner") => ({
        at: new Date(Date.UTC(2026, 11, 1, 0, n)).toISOString(),
        service,
        caller: { kind: "policy" as const, name: caller },
        method: "PUT",
        path: `/enrollments/dev-${n}`,
        status: 200,
        callerIp: "127.0.0.1",
      });

      test("appended events read back newest first, per service, filtered and paged", async () => {
        for (let n = 1; n <= 5; n++) await store.appendAudit(event(n, "alpha", n % 2 ? "owner" : "ci"));
        await store.appendAudit(event(6, "beta"));
        const all = await store.listAudit({ service: "alpha", top: 10 });
        assert.deepEqual(
          all.map((e) => e.path),
          [
            "/enrollments/dev-5",
            "/enrollments/dev-4",
            "/enrollments/dev-3",
            "/enrollments/dev-2",
            "/enrollments/dev-1",
          ],
        );
        const { seq, ...first } = all[0] as (typeof all)[number];
        assert.deepEqual(first, event(5, "alpha", "owner"));
        const page = await store.listAudit({ service: "alpha", top: 2, beforeSeq: all[1]?.seq as number });
        assert.deepEqual(
          page.map((e) => e.path),
          ["/enrollments/dev-3", "/enrollments/dev-2"],
        );
        const ci = await store.listAudit({ service: "alpha", top: 10, caller: "ci" });
        assert.deepEqual(
          ci.map((e) => e.path),
          ["/enrollments/dev-4", "/enrollments/dev-2"],
        );
        const window = await store.listAudit({
          service: "alpha",
          top: 10,
          since: event(2).at,
          until: event(3).at,
        });
        assert.deepEqual(
          window.map((e) => e.path),
          ["/enrollments/dev-3", "/enrollments/dev-2"],
        );
        assert.equal(await store.deleteAuditBefore(event(3).at), 2);
        assert.equal((await store.listAudit({ service: "alpha", top: 10 })).length, 3);
      });

      test("events outlive their instance", async () => {
        await withInstance(A, "alpha");
        await store.appendAudit(event(1));
        assert.equal(await store.deleteInstance(A), true);
        assert.equal((await store.listAudit({ service: "alpha", top: 10 })).length, 1);
      });
    });

    test("secrets are not stored in plaintext", async () => {
      const rawBytes = fx.rawBytes;
      const marker = (what: string): string => `Zq${what}SecretMarker7Kx`;
      await store.createInstance(makeInstance(A, "alpha"), [makePolicy("owner", marker("Policy"))]);
      await store.replaceLinkedHubs(A, [makeHub("hub1.azure-devices.net", marker("Hub"))]);
      await store.putEnrollment(A, makeEnrollment("dev-1", marker("Enrollment")));
      await store.putGroup(A, makeGroup("group-1", marker("Group")));
      // The markers were written (and read back through the store) ...
      const stored = await store.getEnrollment(A, "dev-1");
      assert.equal(stored && symmetricKeysOf(stored.attestation)?.primaryKey, `${marker("Enrollment")}-primary`);
      assert.equal((await store.getPolicy(A, "owner"))?.secondaryKey, `${marker("Policy")}-secondary`);
      // ... but none is on disk; the non-secret parts are, which shows the bytes are the right ones.
      const bytes = await rawBytes();
      assert.ok(bytes.includes("hub1.azure-devices.net"), "raw bytes include the stored records");
      for (const what of ["Policy", "Hub", "Enrollment", "Group"]) {
        assert.equal(bytes.includes(marker(what)), false, `${what} secret found in plaintext`);
      }
    });
  });
}
