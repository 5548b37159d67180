// The real azure-iot-provisioning-service client against a real `provisio serve` over TLS:
// every method of the SDK (service-api.md §2), paging and bulk in their callback forms
// (the promise forms are broken, service-api.md §10.4-5), ETag conflicts and auth failures.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { ProvisioningServiceClient } from "azure-iot-provisioning-service";
import type {
  BulkEnrollmentOperation,
  BulkEnrollmentOperationResult,
  EnrollmentGroup,
  IndividualEnrollment,
} from "azure-iot-provisioning-service/dist/interfaces.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { seedRegistrations } from "../support/seed.js";
import { serviceClient } from "../support/service-client.js";

type Query = ReturnType<ProvisioningServiceClient["createIndividualEnrollmentQuery"]>;

/** Every page of a query, through the callback form of next(). */
async function allPages(query: Query): Promise<{ pages: number; items: Record<string, unknown>[] }> {
  const items: Record<string, unknown>[] = [];
  let pages = 0;
  do {
    const page = await new Promise<unknown[]>((resolve, reject) =>
      query.next((err, result) => (err ? reject(err) : resolve(result as unknown as unknown[]))),
    );
    pages++;
    items.push(...(page as Record<string, unknown>[]));
    assert.ok(pages < 100, "paging does not end");
  } while (query.hasMoreResults);
  return { pages, items };
}

function bulk(client: ProvisioningServiceClient, op: BulkEnrollmentOperation): Promise<BulkEnrollmentOperationResult> {
  return new Promise((resolve, reject) =>
    client.runBulkEnrollmentOperation(op, (err, result) =>
      err ? reject(err) : resolve(result as BulkEnrollmentOperationResult),
    ),
  );
}

const symmetric = (registrationId: string, extra: Partial<IndividualEnrollment> = {}): IndividualEnrollment =>
  ({ registrationId, attestation: { type: "symmetricKey" }, ...extra }) as IndividualEnrollment;

const rejectsNamed = (p: Promise<unknown>, name: string) =>
  assert.rejects(p, (err: Error) => {
    assert.equal(err.name, name, err.message);
    return true;
  });

describe("azure-iot-provisioning-service against provisio serve", () => {
  let p: ProvisioProcess;
  let client: ProvisioningServiceClient;

  before(async () => {
    p = await startProvisio();
    client = serviceClient(p);
  });
  after(async () => {
    await p.dispose();
  });

  test("individual enrollment: create generates 64-byte keys, GET redacts them, attestationmechanism reveals them", async () => {
    const created = (
      await client.createOrUpdateIndividualEnrollment(
        symmetric("Dev-Sym-1", {
          deviceId: "device-sym-1",
          initialTwin: { tags: { floor: 3 }, properties: { desired: { interval: 30 } } },
          capabilities: { iotEdge: true },
        } as unknown as Partial<IndividualEnrollment>),
      )
    ).responseBody;
    const keys = created.attestation.symmetricKey;
    assert.ok(keys?.primaryKey && keys.secondaryKey);
    assert.equal(Buffer.from(keys.primaryKey, "base64").length, 64);
    assert.notEqual(keys.primaryKey, keys.secondaryKey);
    assert.ok(created.etag);
    assert.equal(created.provisioningStatus, "enabled");
    assert.equal(created.registrationState, undefined);

    const got = (await client.getIndividualEnrollment("dev-sym-1")).responseBody;
    assert.equal(got.registrationId, "Dev-Sym-1", "ids are case-insensitive and keep their first spelling");
    assert.deepEqual(got.attestation, { type: "symmetricKey" });
    assert.deepEqual(got.registrationState, { registrationId: "Dev-Sym-1", status: "unassigned" });
    assert.deepEqual(got.initialTwin, { tags: { floor: 3 }, properties: { desired: { interval: 30 } } });
    assert.deepEqual(got.capabilities, { iotEdge: true });
    assert.equal(got.createdDateTimeUtc, created.createdDateTimeUtc);

    const mech = (await client.getIndividualEnrollmentAttestationMechanism("DEV-SYM-1")).responseBody;
    assert.deepEqual(mech, { type: "symmetricKey", symmetricKey: keys });
  });

  test("round-tripping a GET result updates conditionally and keeps keys; a stale etag gets 412", async () => {
    const before = (await client.getIndividualEnrollment("dev-sym-1")).responseBody;
    const mechBefore = (await client.getIndividualEnrollmentAttestationMechanism("dev-sym-1")).responseBody;
    before.provisioningStatus = "disabled";
    const updated = (await client.createOrUpdateIndividualEnrollment(before)).responseBody;
    assert.equal(updated.provisioningStatus, "disabled");
    assert.notEqual(updated.etag, before.etag);
    assert.equal(updated.createdDateTimeUtc, before.createdDateTimeUtc);
    assert.deepEqual(updated.attestation.symmetricKey, mechBefore.symmetricKey, "an echoed GET keeps the keys");

    // `before` still carries the old etag.
    await rejectsNamed(client.createOrUpdateIndividualEnrollment(before), "InvalidEtagError");
    await rejectsNamed(client.deleteIndividualEnrollment("dev-sym-1", before.etag as string), "InvalidEtagError");
    const still = (await client.getIndividualEnrollment("dev-sym-1")).responseBody;
    assert.equal(still.etag, updated.etag, "a refused write changes nothing");
  });

  test("explicit keys are kept; invalid keys and ids are refused with 400", async () => {
    const key = Buffer.alloc(32, 7).toString("base64");
    const r = await client.createOrUpdateIndividualEnrollment(
      symmetric("dev-keys", {
        attestation: { type: "symmetricKey", symmetricKey: { primaryKey: key, secondaryKey: key } },
      }),
    );
    assert.equal(r.responseBody.attestation.symmetricKey?.primaryKey, key);
    const short = Buffer.alloc(8).toString("base64");
    await rejectsNamed(
      client.createOrUpdateIndividualEnrollment(
        symmetric("dev-short", {
          attestation: { type: "symmetricKey", symmetricKey: { primaryKey: short, secondaryKey: short } },
        }),
      ),
      "ArgumentError",
    );
    await rejectsNamed(client.createOrUpdateIndividualEnrollment(symmetric("bad id!")), "ArgumentError");
    await assert.rejects(client.getIndividualEnrollment("dev-short"), /Not found/);
  });

  test("TPM and X.509 enrollments: info computed, PEM never returned, secondary mirrored, info-only update keeps the certificate", async () => {
    const tpm = (
      await client.createOrUpdateIndividualEnrollment({
        registrationId: "dev-tpm",
        attestation: { type: "tpm", tpm: { endorsementKey: "AToAAQALAAMAsgAgg3GXZ0SEs" } },
      } as IndividualEnrollment)
    ).responseBody;
    assert.equal(tpm.attestation.tpm?.endorsementKey, "AToAAQALAAMAsgAgg3GXZ0SEs");

    const pem = p.ca.toString();
    const x = (
      await client.createOrUpdateIndividualEnrollment({
        registrationId: "dev-x509",
        attestation: { type: "x509", x509: { clientCertificates: { primary: { certificate: pem } } } },
      } as IndividualEnrollment)
    ).responseBody;
    const certs = x.attestation.x509?.clientCertificates;
    assert.ok(certs?.primary?.info);
    assert.equal((certs.primary as { certificate?: string }).certificate, undefined);
    assert.match(certs.primary.info.subjectName, /^CN=Provisio Development CA/);
    assert.match(certs.primary.info.sha1Thumbprint, /^[0-9A-F]{40}$/);
    assert.match(certs.primary.info.sha256Thumbprint, /^[0-9A-F]{64}$/);
    assert.deepEqual(certs.secondary, certs.primary);

    const got = (await client.getIndividualEnrollment("dev-x509")).responseBody;
    got.deviceId = "renamed";
    const updated = (await client.createOrUpdateIndividualEnrollment(got)).responseBody;
    assert.equal(updated.deviceId, "renamed");
    assert.deepEqual(updated.attestation.x509?.clientCertificates?.primary?.info, certs.primary.info);
  });

  test("enrollment groups: create, get, lower-case attestationmechanism path, update, delete", async () => {
    const g = (
      await client.createOrUpdateEnrollmentGroup({
        enrollmentGroupId: "group-sym",
        attestation: { type: "symmetricKey" },
        reprovisionPolicy: { updateHubAssignment: true, migrateDeviceData: false },
        allocationPolicy: "hashed",
      } as EnrollmentGroup)
    ).responseBody;
    assert.equal(Buffer.from(g.attestation.symmetricKey?.primaryKey ?? "", "base64").length, 64);
    const got = (await client.getEnrollmentGroup("GROUP-SYM")).responseBody;
    assert.deepEqual(got.attestation, { type: "symmetricKey" });
    assert.deepEqual(got.reprovisionPolicy, { updateHubAssignment: true, migrateDeviceData: false });
    const mech = (await client.getEnrollmentGroupAttestationMechanism("group-sym")).responseBody;
    assert.deepEqual(mech.symmetricKey, g.attestation.symmetricKey);

    got.provisioningStatus = "disabled";
    const updated = (await client.createOrUpdateEnrollmentGroup(got)).responseBody;
    assert.equal(updated.provisioningStatus, "disabled");
    await rejectsNamed(client.createOrUpdateEnrollmentGroup(got), "InvalidEtagError");
    await rejectsNamed(
      client.createOrUpdateEnrollmentGroup({
        enrollmentGroupId: "group-tpm",
        attestation: { type: "tpm", tpm: { endorsementKey: "ZWs=" } },
      } as EnrollmentGroup),
      "ArgumentError",
    );

    await client.createOrUpdateEnrollmentGroup({
      enrollmentGroupId: "group-gone",
      attestation: { type: "symmetricKey" },
    } as EnrollmentGroup);
    await client.deleteEnrollmentGroup("group-gone");
    await assert.rejects(client.getEnrollmentGroup("group-gone"), /Not found/);
    await assert.rejects(client.deleteEnrollmentGroup("group-gone"), /Not found/);
  });

  test("queries page with x-ms-max-item-count and stop: no continuation on the last page", async () => {
    for (let i = 0; i < 7; i++) await client.createOrUpdateIndividualEnrollment(symmetric(`page-${i}`));
    for (let i = 0; i < 3; i++) {
      await client.createOrUpdateEnrollmentGroup({
        enrollmentGroupId: `page-group-${i}`,
        attestation: { type: "symmetricKey" },
      } as EnrollmentGroup);
    }
    const enrollments = await allPages(client.createIndividualEnrollmentQuery({ query: "*" }, 3));
    const ids = enrollments.items.map((e) => e.registrationId as string);
    assert.equal(new Set(ids).size, ids.length, "no item twice");
    for (let i = 0; i < 7; i++) assert.ok(ids.includes(`page-${i}`));
    assert.ok(enrollments.pages >= 3);
    for (const e of enrollments.items) {
      assert.equal((e.attestation as { symmetricKey?: unknown }).symmetricKey, undefined, "query items are redacted");
    }

    const groups = await allPages(client.createEnrollmentGroupQuery({ query: "SELECT *" }, 2));
    const groupIds = groups.items.map((g) => g.enrollmentGroupId);
    for (let i = 0; i < 3; i++) assert.ok(groupIds.includes(`page-group-${i}`));
    assert.equal(new Set(groupIds).size, groupIds.length);

    const single = await allPages(client.createIndividualEnrollmentQuery({ query: "*" }));
    assert.equal(single.pages, 1, "the default page holds them all");
  });

  test("bulk create/update/updateIfMatchETag/delete report per-item errors and do not roll back", async () => {
    const created = await bulk(client, {
      mode: "create",
      enrollments: [
        symmetric("bulk-a"),
        symmetric("bulk-b"),
        { registrationId: "bulk-c", attestation: { type: "tpm" } } as IndividualEnrollment,
      ],
    });
    assert.equal(created.isSuccessful, false);
    assert.equal(created.errors.length, 1);
    assert.equal(created.errors[0]?.registrationId, "bulk-c");
    assert.equal(String(created.errors[0]?.errorCode).slice(0, 3), "400");
    await client.getIndividualEnrollment("bulk-a");
    await client.getIndividualEnrollment("bulk-b");

    const again = await bulk(client, { mode: "create", enrollments: [symmetric("bulk-a")] });
    assert.deepEqual(
      again.errors.map((e: { registrationId: string; errorCode: number }) => [e.registrationId, e.errorCode]),
      [["bulk-a", 409201]],
    );

    await assert.rejects(
      bulk(client, { mode: "create", enrollments: [symmetric("dup"), symmetric("DUP")] }),
      (err: Error) => err.name === "ArgumentError",
      "duplicate ids fail the whole call",
    );
    await assert.rejects(client.getIndividualEnrollment("dup"), /Not found/);

    const updated = await bulk(client, {
      mode: "update",
      enrollments: [symmetric("bulk-a", { provisioningStatus: "disabled" }), symmetric("bulk-new")],
    });
    assert.equal(updated.isSuccessful, true);
    assert.equal((await client.getIndividualEnrollment("bulk-a")).responseBody.provisioningStatus, "disabled");
    await client.getIndividualEnrollment("bulk-new");

    const current = (await client.getIndividualEnrollment("bulk-b")).responseBody;
    const conditional = await bulk(client, {
      mode: "updateIfMatchEtag" as BulkEnrollmentOperation["mode"],
      enrollments: [{ ...current, provisioningStatus: "disabled" }, symmetric("bulk-a", { etag: "stale" })],
    });
    assert.deepEqual(
      conditional.errors.map((e: { registrationId: string; errorCode: number }) => [e.registrationId, e.errorCode]),
      [["bulk-a", 412002]],
    );
    assert.equal((await client.getIndividualEnrollment("bulk-b")).responseBody.provisioningStatus, "disabled");

    const deleted = await bulk(client, {
      mode: "delete",
      enrollments: [symmetric("bulk-a"), symmetric("bulk-b"), symmetric("bulk-missing")],
    });
    assert.deepEqual(
      deleted.errors.map((e: { registrationId: string; errorCode: number }) => [e.registrationId, e.errorCode]),
      [["bulk-missing", 404201]],
    );
    await assert.rejects(client.getIndividualEnrollment("bulk-a"), /Not found/);
  });

  test("registration states: get, conditional delete, per-group query", async () => {
    await client.createOrUpdateEnrollmentGroup({
      enrollmentGroupId: "group-regs",
      attestation: { type: "symmetricKey" },
    } as EnrollmentGroup);
    await seedRegistrations(p.dataDir, p.info.idScope, [
      ...Array.from({ length: 5 }, (_, i) => ({ registrationId: `grp-dev-${i}`, enrollmentGroupId: "group-regs" })),
      { registrationId: "other-dev", enrollmentGroupId: "group-sym" },
      { registrationId: "dev-sym-1" },
    ]);
    const state = (await client.getDeviceRegistrationState("GRP-DEV-0")).responseBody;
    assert.equal(state.registrationId, "grp-dev-0");
    assert.equal(state.status, "assigned");
    assert.equal(state.assignedHub, "hub-1.localhost");
    assert.ok(state.etag);

    const enrollment = (await client.getIndividualEnrollment("dev-sym-1")).responseBody;
    assert.equal(enrollment.registrationState?.status, "assigned", "the enrollment GET carries the real state");

    const regs = await allPages(
      client.createEnrollmentGroupDeviceRegistrationStateQuery({ query: "*" }, "group-regs", 2),
    );
    assert.deepEqual(regs.items.map((s) => s.registrationId).sort(), [
      "grp-dev-0",
      "grp-dev-1",
      "grp-dev-2",
      "grp-dev-3",
      "grp-dev-4",
    ]);
    assert.equal(regs.pages, 3);

    await rejectsNamed(client.deleteDeviceRegistrationState("grp-dev-0", '"bogus"'), "InvalidEtagError");
    await client.deleteDeviceRegistrationState("grp-dev-0", state.etag as string);
    await assert.rejects(client.getDeviceRegistrationState("grp-dev-0"), /Not found/);
    await client.deleteDeviceRegistrationState("grp-dev-1");
    await assert.rejects(client.deleteDeviceRegistrationState("grp-dev-1"), /Not found/);

    // Deleting a group leaves its registration records (service-api.md §11.17).
    await client.deleteEnrollmentGroup("group-regs");
    await client.getDeviceRegistrationState("grp-dev-2");
  });

  test("delete forms: by id, by object with etag, and If-Match *", async () => {
    await client.createOrUpdateIndividualEnrollment(symmetric("del-1"));
    await client.createOrUpdateIndividualEnrollment(symmetric("del-2"));
    await client.createOrUpdateIndividualEnrollment(symmetric("del-3"));
    await client.deleteIndividualEnrollment("del-1");
    const two = (await client.getIndividualEnrollment("del-2")).responseBody;
    await client.deleteIndividualEnrollment(two);
    await client.deleteIndividualEnrollment("del-3", "*");
    for (const id of ["del-1", "del-2", "del-3"]) await assert.rejects(client.getIndividualEnrollment(id), /Not found/);
  });

  test("a wrong key is 401; a policy without the right is 401 naming the right", async () => {
    const wrongKey = p.info.serviceConnectionString.replace(
      /SharedAccessKey=[^;]+/,
      `SharedAccessKey=${Buffer.alloc(32, 1).toString("base64")}`,
    );
    await rejectsNamed(serviceClient(p, wrongKey).getIndividualEnrollment("dev-sym-1"), "UnauthorizedError");
    const unknownPolicy = p.info.serviceConnectionString.replace("provisioningserviceowner", "nobody");
    await rejectsNamed(serviceClient(p, unknownPolicy).getIndividualEnrollment("dev-sym-1"), "UnauthorizedError");

    const { addPolicy } = await import("../support/management.js");
    const readerCs = await addPolicy(p, "reader", "EnrollmentRead");
    const reader = serviceClient(p, readerCs);
    await reader.getIndividualEnrollment("dev-sym-1");
    await assert.rejects(
      reader.createOrUpdateIndividualEnrollment(symmetric("reader-made")),
      (err: Error & { responseBody?: string }) => {
        assert.equal(err.name, "UnauthorizedError");
        assert.match(err.responseBody ?? "", /EnrollmentWrite/);
        return true;
      },
    );
    await assert.rejects(reader.getDeviceRegistrationState("grp-dev-2"), /RegistrationStatusRead/);
    await assert.rejects(client.getIndividualEnrollment("reader-made"), /Not found/);
  });
});
