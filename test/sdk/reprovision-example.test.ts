// examples/reprovision-by-method run as written: a device provisioned to hub-1 is moved to hub-2
// by its back end with the direct method `reprovision` (seed 001's advice), over real TLS with
// the real device, provisioning and hub SDKs.
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { enrollIndividual } from "../support/enrollments.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { serviceClient } from "../support/service-client.js";
import { until } from "../support/until.js";

const run = promisify(execFile);
const examples = resolve(dirname(fileURLToPath(import.meta.url)), "../../examples/reprovision-by-method");

let p: ProvisioProcess;
let device: ChildProcess | undefined;
before(async () => {
  p = await startProvisio({ args: ["--hubs", "2"] });
});
after(async () => {
  device?.kill();
  await p?.dispose();
});

test("the back end moves a connected device to another hub with the direct method 'reprovision'", async () => {
  const key = await enrollIndividual(serviceClient(p), "moving-device", {
    allocationPolicy: "static",
    iotHubs: ["hub-1.localhost"],
  });
  device = spawn(process.execPath, [
    join(examples, "device.js"),
    "--data-dir",
    p.dataDir,
    "--registration-id",
    "moving-device",
    "--key",
    key,
    "--once",
  ]);
  let out = "";
  device.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  device.stderr?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((done) => device?.once("exit", done));
  await until(async () => out.includes("listening for the 'reprovision' method"), 20_000, "the device to connect");
  assert.match(out, /assigned to hub-1\.localhost as moving-device/);

  const backend = await run(
    process.execPath,
    [
      join(examples, "backend.js"),
      "--data-dir",
      p.dataDir,
      "--registration-id",
      "moving-device",
      "--to-hub",
      "hub-2.localhost",
    ],
    { timeout: 60_000 },
  );
  assert.match(backend.stdout, /enrollment now points at hub-2\.localhost; the device is on hub-1\.localhost/);
  assert.match(backend.stdout, /the device answered \{"status":200,"payload":\{"reprovisioning":true\}\}/);

  assert.equal(await exited, 0, out);
  assert.match(out, /reprovision asked: \{"toHub":"hub-2\.localhost"\}/);
  assert.match(out, /re-provisioned to hub-2\.localhost as moving-device/);
  const state = (await serviceClient(p).getDeviceRegistrationState("moving-device")).responseBody;
  assert.equal(state.assignedHub, "hub-2.localhost");
});
