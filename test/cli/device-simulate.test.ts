// `provisio device simulate` and `provisio device register` against a real server: a few hundred
// devices over each of the five device transports (the bench's generators), X.509 leaves issued for
// the run, the first message to the hub, a failing fleet summarised by reason, and "any DPS
// endpoint" flags. What happened is checked with the real service SDK and the hub's message log.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { SimulationSummary } from "../../src/cli/simulation-summary.js";
import { hubOf } from "../support/hub-clients.js";
import { call } from "../support/management.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { runProvisio } from "../support/run-cli.js";
import { serviceClient } from "../support/service-client.js";

const PROTOCOLS = ["http", "mqtt", "mqttws", "amqp", "amqpws"] as const;
const COUNT = 200;

describe("provisio device simulate / register", () => {
  let p: ProvisioProcess;
  const run = (args: string[]) => runProvisio([...args, "--data-dir", p.dataDir]);
  const simulate = async (args: string[]) => {
    const r = await run(["device", "simulate", "-o", "json", ...args]);
    const context = `provisio device simulate ${args.join(" ")}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
    return { code: r.code, summary: JSON.parse(r.stdout || "{}") as SimulationSummary, context };
  };
  /** Every record of a group, through the CLI (which pages through the service API's query). */
  const recordsOf = async (group: string): Promise<number> => {
    const r = await run(["registration", "list", "--gid", group]);
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as unknown[]).length;
  };

  before(async () => {
    p = await startProvisio();
  });
  after(async () => {
    await p.dispose();
  });

  for (const protocol of PROTOCOLS) {
    test(`${COUNT} symmetric-key devices over ${protocol}`, async () => {
      const { code, summary, context } = await simulate([
        "--count",
        String(COUNT),
        "--protocol",
        protocol,
        "--concurrency",
        "24",
        "--id-prefix",
        `sim-${protocol}`,
      ]);
      assert.equal(code, 0, context);
      assert.equal(summary.assigned, COUNT, context);
      assert.equal(summary.failed, 0, context);
      assert.deepEqual(summary.hubs, { [hubOf(p).hostName]: COUNT });
      assert.ok(summary.latencyMs && summary.latencyMs.p50 <= summary.latencyMs.p99);
      assert.ok(summary.registrationsPerSecond > 0);
    });
  }

  test("the simulator's group holds every record, each seen by the service SDK", async () => {
    assert.equal(await recordsOf("provisio-simulator"), COUNT * PROTOCOLS.length);
    const state = (await serviceClient(p).getDeviceRegistrationState("sim-amqpws-7")).responseBody;
    assert.equal(state.status, "assigned");
  });

  test("X.509 leaves issued for the run, over MQTT-WS and AMQP, then a message to the hub each", async () => {
    for (const protocol of ["mqttws", "amqp"]) {
      const { code, summary, context } = await simulate([
        "--count",
        "40",
        "--protocol",
        protocol,
        "--attestation",
        "x509",
        "--send-message",
        "--id-prefix",
        `x509-${protocol}`,
      ]);
      assert.equal(code, 0, context);
      assert.equal(summary.assigned, 40, context);
      assert.deepEqual(summary.messages, { sent: 40, failed: 0, failures: {} }, context);
    }
    const r = await call(p, "GET", "/_provisio/messages?deviceId=x509-amqp-3", {
      connectionString: hubOf(p).connectionString,
    });
    const messages = r.json() as { payload: { registrationId: string } }[];
    assert.equal(messages[0]?.payload.registrationId, "x509-amqp-3");
  });

  test("a failing fleet ends with exit code 1 and its failures grouped by reason", async () => {
    const wrongKey = Buffer.alloc(32, 1).toString("base64");
    const { code, summary, context } = await simulate(["--count", "6", "--group-key", wrongKey, "--protocol", "mqtt"]);
    assert.equal(code, 1, context);
    assert.equal(summary.failed, 6);
    const reasons = Object.entries(summary.failures);
    assert.equal(reasons.length, 1, context);
    assert.match(reasons[0]?.[0] ?? "", /401002/);
    assert.equal(reasons[0]?.[1], 6);
    // The text form says the same for people.
    const text = await run(["device", "simulate", "--count", "2", "--group-key", wrongKey, "--protocol", "amqp"]);
    assert.match(text.stdout, /2 devices over amqp .* 0 assigned, 2 failed\./);
    assert.match(text.stdout, /failed\s+2 {2}SASL outcome 1 \(authentication failed\)/);
  });

  test("any DPS endpoint: --provisioning-host, --id-scope, --group-key and --ca-file, without a data dir", async () => {
    const key = (
      (await serviceClient(p).getEnrollmentGroupAttestationMechanism("provisio-simulator")).responseBody
        .symmetricKey as {
        primaryKey: string;
      }
    ).primaryKey;
    const r = await runProvisio([
      "device",
      "simulate",
      "-o",
      "json",
      "--count",
      "25",
      "--protocol",
      "amqp",
      "--provisioning-host",
      `localhost:${p.info.ports.amqp}`,
      "--address",
      "127.0.0.1",
      "--id-scope",
      p.info.idScope,
      "--group-key",
      key,
      "--ca-file",
      p.info.caFile,
      "--data-dir",
      "/nonexistent",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as SimulationSummary).assigned, 25);
  });

  test("device register: one device, its key from its enrollment, a payload, the assignment printed", async () => {
    const created = await run(["enrollment", "create", "--eid", "reg-one", "--at", "symmetrickey"]);
    assert.equal(created.code, 0, created.stderr);
    for (const protocol of ["http", "amqpws"]) {
      const r = await run([
        "device",
        "register",
        "--rid",
        "reg-one",
        "--protocol",
        protocol,
        "--payload",
        '{"model":"m1"}',
      ]);
      assert.equal(r.code, 0, r.stderr);
      const state = JSON.parse(r.stdout) as { registrationId: string; status: string; assignedHub: string };
      assert.deepEqual(
        [state.registrationId, state.status, state.assignedHub],
        ["reg-one", "assigned", hubOf(p).hostName],
      );
    }
    const refused = await run(["device", "register", "--rid", "reg-one", "--key", Buffer.alloc(32).toString("base64")]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /Registration of 'reg-one' failed: register: HTTP 401 401002/);
    const unknown = await run(["device", "register", "--rid", "nobody"]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /does not exist/);
  });
});
