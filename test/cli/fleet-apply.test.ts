// `provisio apply` and `provisio export` against a real server: a fleet file creates what it
// lists, applying twice changes nothing, --dry-run changes nothing, --prune deletes what the file
// dropped, and an export applied to an empty instance rebuilds the same state. Checked with the
// real service SDK.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parse as parseYaml, stringify } from "yaml";
import { deriveDeviceKey } from "../../src/attestation/symmetric-key.js";
import type { Manifest } from "../../src/cli/fleet/manifest.js";
import { selfSignedDeviceCert } from "../support/certs.js";
import { httpTransport, registerWithKey } from "../support/device-clients.js";
import { hubOf } from "../support/hub-clients.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { runProvisio } from "../support/run-cli.js";
import { serviceClient } from "../support/service-client.js";

const GROUP_KEY = Buffer.alloc(64, 7).toString("base64");

describe("provisio apply / export", () => {
  let p: ProvisioProcess;
  let dir: string;
  let file: string;
  let fleet: Manifest;

  const run = async (args: string[]) => {
    const r = await runProvisio([...args, "--data-dir", p.dataDir]);
    return { ...r, context: `provisio ${args.join(" ")}\nstdout: ${r.stdout}\nstderr: ${r.stderr}` };
  };
  const ok = async (args: string[]): Promise<string> => {
    const r = await run(args);
    assert.equal(r.code, 0, r.context);
    return r.stdout;
  };
  const write = (m: unknown, name = "fleet.yaml") => {
    writeFileSync(join(dir, name), stringify(m));
    return join(dir, name);
  };

  before(async () => {
    p = await startProvisio();
    dir = mkdtempSync(join(tmpdir(), "provisio-fleet-"));
    const root = await selfSignedDeviceCert("Fleet Root CA");
    writeFileSync(join(dir, "root.pem"), root.certPem);
    const device = await selfSignedDeviceCert("fleet-x509");
    writeFileSync(join(dir, "device.pem"), device.certPem);
    const hub = hubOf(p);
    fleet = {
      provisioningServices: [
        {
          name: "provisio",
          linkedHubs: [{ connectionString: hub.connectionString, location: "local", allocationWeight: 2 }],
          policies: [
            {
              keyName: "provisioningserviceowner",
              rights:
                "ServiceConfig, EnrollmentRead, EnrollmentWrite, RegistrationStatusRead, RegistrationStatusWrite, DeviceConnect",
            },
            { keyName: "fleet-readers", rights: "EnrollmentRead, RegistrationStatusRead" },
          ],
          certificates: [{ name: "fleet-root", certificateFile: "root.pem", verified: true }],
          enrollmentGroups: [
            {
              enrollmentGroupId: "fleet-sensors",
              attestation: { type: "symmetricKey", symmetricKey: { primaryKey: GROUP_KEY, secondaryKey: GROUP_KEY } },
              initialTwin: { tags: { site: "north" } },
            },
            {
              enrollmentGroupId: "fleet-plant",
              attestation: { type: "x509", x509: { caReferences: { primary: "fleet-root" } } },
              capabilities: { iotEdge: true },
            },
          ],
          enrollments: [
            { registrationId: "fleet-dev", attestation: { type: "symmetricKey" }, deviceId: "fleet-device" },
            {
              registrationId: "fleet-x509",
              attestation: {
                type: "x509",
                x509: { clientCertificates: { primary: { certificateFile: "device.pem" } } },
              },
              allocationPolicy: "static",
              iotHubs: [hub.hostName],
            },
            { registrationId: "fleet-tpm", attestation: { type: "tpm", tpm: { endorsementKey: "AToAAQALAAMAsgAg" } } },
          ],
        },
      ],
    } as Manifest;
    file = write(fleet);
  });
  after(async () => {
    await p.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  test("--dry-run prints the plan and changes nothing", async () => {
    const out = await ok(["apply", "-f", file, "--dry-run"]);
    assert.match(out, /\+ create enrollmentGroup fleet-sensors/);
    assert.match(out, /\+ create certificate fleet-root/);
    assert.match(out, /\+ create policy fleet-readers/);
    assert.match(
      out,
      /Plan: 7 to create, 1 to update, 0 to delete\./,
      "the built-in hub is already linked: its weight changes",
    );
    const r = await run(["enrollment-group", "list"]);
    assert.deepEqual(JSON.parse(r.stdout), []);
  });

  test("apply creates everything; the SDKs see it; applying again changes nothing", async () => {
    const out = await ok(["apply", "-f", file]);
    assert.match(out, /Applied 8 changes\./);
    const sdk = serviceClient(p);
    const keys = (await sdk.getEnrollmentGroupAttestationMechanism("fleet-sensors")).responseBody;
    assert.equal(keys.symmetricKey?.primaryKey, GROUP_KEY);
    assert.equal((await sdk.getEnrollmentGroup("fleet-plant")).responseBody.capabilities?.iotEdge, true);
    assert.equal((await sdk.getIndividualEnrollment("fleet-x509")).responseBody.allocationPolicy, "static");
    assert.equal((await sdk.getIndividualEnrollment("fleet-dev")).responseBody.deviceId, "fleet-device");
    // A device of the declared group registers with a key derived from the declared group key.
    const result = await registerWithKey(
      p,
      httpTransport(p),
      "fleet-sensor-1",
      deriveDeviceKey(GROUP_KEY, "fleet-sensor-1"),
    );
    assert.equal(result.assignedHub, hubOf(p).hostName);
    const certs = JSON.parse(await ok(["certificate", "list"])) as {
      value: { name: string; properties: { isVerified: boolean } }[];
    };
    assert.deepEqual(
      certs.value.map((c) => [c.name, c.properties.isVerified]),
      [["fleet-root", true]],
    );
    const hubs = JSON.parse(await ok(["linked-hub", "list"])) as { allocationWeight: number }[];
    assert.equal(hubs[0]?.allocationWeight, 2);

    assert.equal(await ok(["apply", "-f", file]), "No changes: the server already matches the file.\n");
  });

  test("a changed file is an update with a diff; a dropped object is deleted only with --prune", async () => {
    const changed = structuredClone(fleet);
    const instance = changed.provisioningServices[0];
    assert.ok(instance?.enrollmentGroups && instance.enrollments);
    (instance.enrollmentGroups[0] as { initialTwin: unknown }).initialTwin = { tags: { site: "south" } };
    instance.enrollments = instance.enrollments.filter((e) => e.registrationId !== "fleet-tpm");
    const next = write(changed, "changed.yaml");
    const plan = await ok(["apply", "-f", next, "--dry-run"]);
    assert.match(plan, /~ update enrollmentGroup fleet-sensors\n\s+initialTwin\.tags\.site: "north" → "south"/);
    assert.doesNotMatch(plan, /- delete/);
    const pruning = await ok(["apply", "-f", next, "--dry-run", "--prune"]);
    assert.match(pruning, /- delete enrollment fleet-tpm/);
    await ok(["apply", "-f", next]);
    const sdk = serviceClient(p);
    assert.deepEqual((await sdk.getEnrollmentGroup("fleet-sensors")).responseBody.initialTwin?.tags, { site: "south" });
    await sdk.getIndividualEnrollment("fleet-tpm"); // still there without --prune
    await ok(["apply", "-f", next, "--prune"]);
    await assert.rejects(sdk.getIndividualEnrollment("fleet-tpm"));
    assert.equal(await ok(["apply", "-f", next, "--prune"]), "No changes: the server already matches the file.\n");
  });

  test("export, then apply to an empty instance: the same state; export without secrets hides keys", async () => {
    const hidden = parseYaml(await ok(["export", "--dps-name", "provisio"])) as Manifest;
    const sensors = hidden.provisioningServices[0]?.enrollmentGroups?.find(
      (g) => g.enrollmentGroupId === "fleet-sensors",
    );
    assert.deepEqual(sensors?.attestation, { type: "symmetricKey" });
    assert.match(String(hidden.provisioningServices[0]?.linkedHubs?.[0]?.connectionString), /SharedAccessKey=\*\*\*\*/);

    const out = join(dir, "export.yaml");
    await ok(["export", "--dps-name", "provisio", "--include-secrets", "-f", out]);
    const exported = parseYaml(readFileSync(out, "utf8")) as Manifest;
    const copy = { provisioningServices: [{ ...exported.provisioningServices[0], name: "fleet-copy" }] };
    await ok(["apply", "-f", write(copy, "copy.yaml")]);
    const again = parseYaml(await ok(["export", "--dps-name", "fleet-copy", "--include-secrets"])) as Manifest;
    assert.deepEqual({ ...again.provisioningServices[0], name: "provisio" }, exported.provisioningServices[0]);
    // Folders merge their files; the export applied back to its own instance changes nothing.
    assert.equal(await ok(["apply", "-f", out]), "No changes: the server already matches the file.\n");
  });

  test("bad files are refused with the place and what to write", async () => {
    const bad = async (m: unknown, message: RegExp) => {
      const r = await run(["apply", "-f", write(m, "bad.yaml")]);
      assert.equal(r.code, 1, r.context);
      assert.match(r.stderr, message, r.context);
    };
    await bad({ instances: [] }, /'provisioningServices' list/);
    await bad({ provisioningServices: [{ name: "provisio", enrolments: [] }] }, /unknown field 'enrolments'/);
    await bad(
      {
        provisioningServices: [
          {
            name: "provisio",
            enrollments: [
              { registrationId: "a", attestation: { type: "symmetricKey" } },
              { registrationId: "a", attestation: { type: "symmetricKey" } },
            ],
          },
        ],
      },
      /lists 'a' twice/,
    );
    await bad(
      { provisioningServices: [{ name: "provisio", certificates: [{ name: "x", thumbprint: "AB" }] }] },
      /needs its PEM/,
    );
    await bad(
      {
        provisioningServices: [
          { name: "provisio", enrollments: [{ registrationId: "Bad Id!", attestation: { type: "symmetricKey" } }] },
        ],
      },
      /create enrollment Bad Id! in provisio failed/,
    );
    const missing = await run(["apply", "-f", join(dir, "nope.yaml")]);
    assert.match(missing.stderr, /Cannot read/);
  });
});
