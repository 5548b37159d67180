// The `az iot dps` verbs of the provisio CLI (management.md §7), run as a process against a real
// `provisio serve`; what they did is checked with the real service SDK, device SDK and hub registry.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parse as parseYaml } from "yaml";
import { deriveDeviceKey } from "../../src/attestation/symmetric-key.js";
import { selfSignedDeviceCert } from "../support/certs.js";
import { httpTransport, registerWithKey } from "../support/device-clients.js";
import { hubOf, registryClient } from "../support/hub-clients.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { runProvisio } from "../support/run-cli.js";
import { serviceClient } from "../support/service-client.js";

type Json = Record<string, unknown> & { [k: string]: unknown };

describe("provisio enrollment, enrollment-group, registration, linked-hub, policy, instance", () => {
  let p: ProvisioProcess;
  let data: string[];
  let dir: string;

  const run = async (args: string[]) => {
    const r = await runProvisio([...args, ...data]);
    return { ...r, context: `provisio ${args.join(" ")}\nstdout: ${r.stdout}\nstderr: ${r.stderr}` };
  };
  const ok = async <T = Json>(args: string[]): Promise<T> => {
    const r = await run(args);
    assert.equal(r.code, 0, r.context);
    return (r.stdout.trim() === "" ? undefined : JSON.parse(r.stdout)) as T;
  };
  const refused = async (args: string[], message: RegExp) => {
    const r = await run(args);
    assert.equal(r.code, 1, r.context);
    assert.equal(r.stdout, "", r.context);
    assert.match(r.stderr, message, r.context);
    return r.stderr;
  };

  before(async () => {
    p = await startProvisio();
    data = ["--data-dir", p.dataDir];
    dir = mkdtempSync(join(tmpdir(), "provisio-verbs-"));
  });
  after(async () => {
    await p.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  test("enrollment create|show|list|update|delete, seen by the service SDK", async () => {
    const sdk = serviceClient(p);
    const created = await ok([
      "enrollment",
      "create",
      "--eid",
      "cli-dev-1",
      "--attestation-type",
      "symmetrickey",
      "--device-id",
      "cli-device-1",
      "--tags",
      '{"site":"north"}',
      "--props",
      '{"interval":30}',
      "--rp",
      "reprovisionandresetdata",
      "--ee",
    ]);
    assert.equal(created.registrationId, "cli-dev-1");
    const e = (await sdk.getIndividualEnrollment("cli-dev-1")).responseBody;
    assert.equal(e.deviceId, "cli-device-1");
    assert.deepEqual(e.initialTwin?.tags, { site: "north" });
    assert.deepEqual(e.initialTwin?.properties?.desired, { interval: 30 });
    assert.deepEqual(e.reprovisionPolicy, { updateHubAssignment: true, migrateDeviceData: false });
    assert.equal(e.capabilities?.iotEdge, true);

    const keyed = await ok<Json & { attestation: { symmetricKey: { primaryKey: string } } }>([
      "enrollment",
      "show",
      "--eid",
      "cli-dev-1",
      "--show-keys",
    ]);
    assert.equal(
      keyed.attestation.symmetricKey.primaryKey,
      (created.attestation as Json & { symmetricKey: { primaryKey: string } }).symmetricKey.primaryKey,
    );
    const plain = await ok(["enrollment", "show", "--eid", "cli-dev-1"]);
    assert.equal((plain.attestation as Json).symmetricKey, undefined, "keys only with --show-keys");

    // Update keeps what it is not told to change, keys included.
    await ok(["enrollment", "update", "--eid", "cli-dev-1", "--ps", "disabled", "--ee", "false"]);
    const updated = (await sdk.getIndividualEnrollment("cli-dev-1")).responseBody;
    assert.equal(updated.provisioningStatus, "disabled");
    assert.equal(updated.capabilities?.iotEdge, false);
    assert.deepEqual(updated.initialTwin?.tags, { site: "north" });
    const keys = (await sdk.getIndividualEnrollmentAttestationMechanism("cli-dev-1")).responseBody;
    assert.equal(keys.symmetricKey?.primaryKey, keyed.attestation.symmetricKey.primaryKey);

    // A stale etag: 412 and what to do.
    await refused(
      ["enrollment", "update", "--eid", "cli-dev-1", "--ps", "enabled", "--etag", String(created.etag)],
      /412[\s\S]*run the matching 'show' again/,
    );
    await refused(["enrollment", "create", "--eid", "cli-dev-1", "--at", "symmetrickey"], /already exists/);

    const table = await run(["enrollment", "list", "--output", "table"]);
    assert.equal(table.code, 0, table.context);
    assert.match(table.stdout, /^RegistrationId\s+ProvisioningStatus/m);
    assert.match(table.stdout, /cli-dev-1\s+disabled/);
    const yaml = await run(["enrollment", "list", "-o", "yaml"]);
    assert.equal((parseYaml(yaml.stdout) as Json[])[0]?.registrationId, "cli-dev-1");

    await ok(["enrollment", "delete", "--eid", "cli-dev-1"]);
    await assert.rejects(sdk.getIndividualEnrollment("cli-dev-1"));
    await refused(["enrollment", "show", "--eid", "cli-dev-1"], /does not exist[\s\S]*'list' verb/i);
  });

  test("X.509 and TPM enrollments; az's validation of allocation flags", async () => {
    const cert = await selfSignedDeviceCert("cli-x509-dev");
    const pem = join(dir, "dev.pem");
    writeFileSync(pem, cert.certPem);
    const hub = hubOf(p).hostName;
    await ok([
      "enrollment",
      "create",
      "--eid",
      "cli-x509-dev",
      "--at",
      "x509",
      "--cp",
      pem,
      "--ap",
      "static",
      "--ih",
      hub,
    ]);
    const x = (await serviceClient(p).getIndividualEnrollment("cli-x509-dev")).responseBody;
    assert.equal(x.attestation.type, "x509");
    assert.equal(x.allocationPolicy, "static");
    assert.deepEqual(x.iotHubs, [hub]);
    await ok(["enrollment", "create", "--eid", "cli-tpm-dev", "--at", "tpm", "--ek", "AToAAQALAAMAsgAg"]);
    assert.equal((await serviceClient(p).getIndividualEnrollment("cli-tpm-dev")).responseBody.attestation.type, "tpm");

    await refused(["enrollment", "create", "--eid", "v1", "--at", "x509"], /needs --certificate-path/);
    await refused(["enrollment", "create", "--eid", "v1", "--at", "tpm"], /needs --endorsement-key/);
    await refused(
      ["enrollment", "create", "--eid", "v1", "--at", "symmetrickey", "--ih", hub],
      /--iot-hubs needs --allocation-policy/,
    );
    await refused(["enrollment", "create", "--eid", "v1", "--at", "symmetrickey", "--ap", "static"], /exactly one hub/);
    await refused(
      ["enrollment", "create", "--eid", "v1", "--at", "symmetrickey", "--ap", "custom"],
      /--webhook-url and --api-version/,
    );
    await refused(["enrollment", "update", "--eid", "cli-x509-dev", "--pk", "abc"], /X\.509; keys cannot/);
    await refused(["enrollment", "create", "--eid", "v1"], /--attestation-type \(--at\) is required/);
    // The server's own checks come through with their code.
    await refused(["enrollment", "create", "--eid", "bad id!", "--at", "symmetrickey"], /400/);
  });

  test("enrollment-group create, compute-device-key, registration list|show|delete --deprovision", async () => {
    const group = await ok<Json & { attestation: { symmetricKey: { primaryKey: string } } }>([
      "enrollment-group",
      "create",
      "--gid",
      "cli-sensors",
    ]);
    const groupKey = group.attestation.symmetricKey.primaryKey;
    const derived = await ok<string>([
      "enrollment-group",
      "compute-device-key",
      "--gid",
      "cli-sensors",
      "--rid",
      "s-1",
    ]);
    assert.equal(derived, deriveDeviceKey(groupKey, "s-1"));
    assert.equal(await ok<string>(["compute-device-key", "--key", groupKey, "--rid", "s-1"]), derived);

    const result = await registerWithKey(p, httpTransport(p), "s-1", derived);
    assert.equal(result.deviceId, "s-1");
    const records = await ok<Json[]>(["enrollment-group", "registration", "list", "--gid", "cli-sensors"]);
    assert.deepEqual(
      records.map((r) => [r.registrationId, r.status, r.assignedHub]),
      [["s-1", "assigned", result.assignedHub]],
    );
    assert.deepEqual((await ok<Json[]>(["registration", "list", "--gid", "cli-sensors", "--top", "1"])).length, 1);
    const shown = await ok(["enrollment-group", "registration", "show", "--gid", "cli-sensors", "--rid", "s-1"]);
    assert.equal(shown.deviceId, "s-1");
    assert.equal((await ok(["registration", "show", "--rid", "s-1"])).status, "assigned");

    const registry = registryClient(p);
    assert.equal((await registry.get("s-1")).responseBody.deviceId, "s-1");
    await ok(["enrollment-group", "registration", "delete", "--gid", "cli-sensors", "--rid", "s-1", "--deprovision"]);
    await assert.rejects(registry.get("s-1"), "the hub device is gone too");
    await refused(["registration", "show", "--rid", "s-1"], /No registration state/);

    await ok(["enrollment-group", "update", "--gid", "cli-sensors", "--ps", "disabled"]);
    assert.equal(
      (await serviceClient(p).getEnrollmentGroup("cli-sensors")).responseBody.provisioningStatus,
      "disabled",
    );
    const listed = await ok<Json[]>(["enrollment-group", "list"]);
    assert.ok(listed.some((g) => g.enrollmentGroupId === "cli-sensors"));
    await ok(["enrollment-group", "delete", "--gid", "cli-sensors"]);
    await assert.rejects(serviceClient(p).getEnrollmentGroup("cli-sensors"));
  });

  test("policy create|show|update|delete and connection-string show; a read-only policy is told what it lacks", async () => {
    const created = await ok<Json>([
      "policy",
      "create",
      "--pn",
      "cli-readers",
      "--rights",
      "EnrollmentRead",
      "RegistrationStatusRead",
    ]);
    assert.equal(created.rights, "EnrollmentRead, RegistrationStatusRead");
    const cs = await ok<{ connectionString: string }>(["connection-string", "show", "--pn", "cli-readers"]);
    assert.match(cs.connectionString, /SharedAccessKeyName=cli-readers;SharedAccessKey=/);
    // The read-only connection string reads through the SDK and through --login, and cannot write.
    const reader = serviceClient(p, cs.connectionString);
    await reader.getIndividualEnrollment("cli-tpm-dev");
    const login = ["--login", cs.connectionString, "--ca-file", p.info.caFile, "--port", String(p.info.ports.https)];
    const viaLogin = await runProvisio(["enrollment", "show", "--eid", "cli-tpm-dev", ...login]);
    assert.equal(viaLogin.code, 0, viaLogin.stderr);
    const write = await runProvisio(["enrollment", "create", "--eid", "w1", "--at", "symmetrickey", ...login]);
    assert.equal(write.code, 1);
    assert.match(write.stderr, /this command needs EnrollmentWrite/);
    // Without the CA the system's trust refuses the development certificate: the message says what to pass.
    const untrusted = await runProvisio([
      "enrollment",
      "list",
      "--login",
      cs.connectionString,
      "--port",
      String(p.info.ports.https),
    ]);
    assert.equal(untrusted.code, 1);
    assert.match(untrusted.stderr, /--ca-file/);

    const before = created.primaryKey;
    const renewed = await ok<Json>(["policy", "update", "--pn", "cli-readers", "--primary-key", ""]);
    assert.notEqual(renewed.primaryKey, before, "'' regenerates the key");
    assert.equal(renewed.secondaryKey, created.secondaryKey, "the other key stays");
    await assert.rejects(reader.getIndividualEnrollment("cli-tpm-dev"), "the old key no longer works");
    const owner = await ok<Json>(["policy", "show", "--pn", "provisioningserviceowner"]);
    assert.match(String(owner.rights), /ServiceConfig/);
    await refused(["policy", "delete", "--pn", "provisioningserviceowner"], /signs with/);
    await ok(["policy", "delete", "--pn", "cli-readers"]);
    const names = (await ok<Json[]>(["policy", "list"])).map((x) => x.keyName);
    assert.deepEqual(names, ["provisioningserviceowner"]);
  });

  test("instance create|show|update|list|delete and linked-hub create|show|update|delete with --dps-name", async () => {
    const created = await ok<Json & { properties: Json }>([
      "instance",
      "create",
      "-n",
      "cli-second",
      "--location",
      "West US",
    ]);
    assert.match(String(created.properties.idScope), /^0ne[0-9A-F]{8}$/);
    await refused(["instance", "create", "-n", "cli-second"], /already exists/);
    await refused(["instance", "create", "-n", "cli-third", "--unit", "7"], /whole server/);
    const hub = hubOf(p);
    const hubs = await ok<Json[]>([
      "linked-hub",
      "create",
      "--dps-name",
      "cli-second",
      "--hub-name",
      hub.name,
      "--allocation-weight",
      "3",
    ]);
    assert.deepEqual(
      hubs.map((h) => [h.name, h.allocationWeight, h.applyAllocationPolicy]),
      [[hub.hostName, 3, true]],
    );
    await refused(
      ["linked-hub", "create", "--dps-name", "cli-second", "--connection-string", hub.connectionString],
      /already linked/,
    );
    const shown = await ok(["linked-hub", "show", "--dps-name", "cli-second", "--linked-hub", hub.hostName]);
    assert.match(String(shown.connectionString), /SharedAccessKey=\*\*\*\*/);
    await ok([
      "linked-hub",
      "update",
      "--dps-name",
      "cli-second",
      "--lh",
      hub.hostName,
      "--allocation-weight",
      "9",
      "--apply-allocation-policy",
      "false",
    ]);
    const afterUpdate = await ok<Json[]>(["linked-hub", "list", "--dps-name", "cli-second"]);
    assert.deepEqual([afterUpdate[0]?.allocationWeight, afterUpdate[0]?.applyAllocationPolicy], [9, false]);

    // Data-plane verbs on another instance sign with that instance's policy (found through listkeys).
    await ok(["enrollment-group", "create", "--dps-name", "cli-second", "--gid", "second-group"]);
    assert.equal((await ok<Json[]>(["enrollment-group", "list", "--dps-name", "cli-second"])).length, 1);
    assert.equal(
      (await ok<Json[]>(["enrollment-group", "list"])).some((g) => g.enrollmentGroupId === "second-group"),
      false,
    );

    const updated = await ok<Json & { properties: Json }>([
      "instance",
      "update",
      "-n",
      "cli-second",
      "--set",
      "properties.allocationPolicy=GeoLatency",
    ]);
    assert.equal(updated.properties.allocationPolicy, "GeoLatency");
    await refused(
      ["instance", "update", "-n", "cli-second", "--set", "properties.allocationPolicy=Nearest"],
      /allocationPolicy/,
    );
    const listed = await ok<Json[]>(["instance", "list"]);
    assert.deepEqual(listed.map((i) => i.name).sort(), ["cli-second", "provisio"]);
    await ok(["linked-hub", "delete", "--dps-name", "cli-second", "--lh", hub.hostName]);
    assert.deepEqual(await ok(["linked-hub", "list", "--dps-name", "cli-second"]), []);
    await ok(["instance", "delete", "-n", "cli-second"]);
    await refused(["instance", "show", "-n", "cli-second"], /not found|does not exist/i);
  });
});
