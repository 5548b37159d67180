// Every registration explained (issue 22): GET /registrations/{id}/attempts shows a device's last
// register calls step by step — assigned ones kept with the record, refused ones on their own —
// for devices of the real SDK over HTTPS and MQTT. (A refused X.509 device: device-x509.test.ts;
// a webhook that fails: custom-allocation.test.ts.)
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { RegistrationAttempt } from "../../src/domain/attempt.js";
import { ADMITTED_STEPS } from "../support/attempts.js";
import { httpTransport, mqttTransport, registerWithKey } from "../support/device-clients.js";
import { enrollIndividual } from "../support/enrollments.js";
import { call } from "../support/management.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { runProvisio } from "../support/run-cli.js";
import { serviceClient } from "../support/service-client.js";
import { until } from "../support/until.js";

let p: ProvisioProcess;
before(async () => {
  p = await startProvisio();
});
after(async () => {
  await p.dispose();
});

const attemptsOf = async (id: string) => {
  const r = await call(p, "GET", `/registrations/${id}/attempts?api-version=2021-10-01`);
  return { status: r.status, attempts: r.json() as RegistrationAttempt[], text: r.text };
};

test("an assigned device's attempts: every step passed, explained, newest first", async () => {
  const key = await enrollIndividual(serviceClient(p), "explained-dev");
  await registerWithKey(p, httpTransport(p), "explained-dev", key);
  const mqtt = mqttTransport(p);
  await registerWithKey(p, mqtt.transport, "explained-dev", key, undefined, mqtt.host);
  const { status, attempts } = await attemptsOf("explained-dev");
  assert.equal(status, 200);
  assert.equal(attempts.length, 2);
  const [second, first] = attempts as [RegistrationAttempt, RegistrationAttempt];
  assert.equal(first.protocol, "http");
  assert.equal(second.protocol, "mqtt");
  for (const a of attempts) {
    assert.equal(a.outcome, "assigned");
    assert.equal(a.sourceAddress.replace(/^::ffff:/, ""), "127.0.0.1");
    assert.match(a.operationId ?? "", /\S/);
    assert.ok(a.durationMs >= 0);
    assert.deepEqual(
      a.steps.map((s) => `${s.step} ${s.outcome}`),
      [...ADMITTED_STEPS, "allocate passed", "planHubChanges passed", "applyHubChanges passed"],
    );
  }
  const detail = (a: RegistrationAttempt, step: string) => a.steps.find((s) => s.step === step)?.detail ?? "";
  assert.match(detail(first, "findCandidates"), /individual enrollment 'explained-dev' \(symmetricKey\)/);
  assert.match(detail(first, "attestDevice"), /attested by individual enrollment 'explained-dev' with a SAS token/);
  assert.match(detail(first, "allocate"), /^hashed among hub-1\.localhost: chose hub-1\.localhost$/);
  assert.match(detail(first, "applyHubChanges"), /identity written on hub-1\.localhost/);
  assert.match(detail(second, "readPrevious"), /registered before: 'explained-dev' on hub-1\.localhost/);

  // The record's DPS shape does not carry them.
  const state = (await serviceClient(p).getDeviceRegistrationState("explained-dev")).responseBody;
  assert.equal("attempts" in state, false);
});

test("refused devices' attempts are kept on their own: a wrong key, an unknown device", async () => {
  await enrollIndividual(serviceClient(p), "wrong-key-dev");
  const wrongKey = Buffer.alloc(32, 7).toString("base64");
  await assert.rejects(registerWithKey(p, httpTransport(p), "wrong-key-dev", wrongKey));
  await assert.rejects(registerWithKey(p, httpTransport(p), "never-enrolled-dev", wrongKey));

  await until(async () => (await attemptsOf("never-enrolled-dev")).status === 200, 5_000, "the refusal kept");
  const unknown = (await attemptsOf("never-enrolled-dev")).attempts[0];
  assert.equal(unknown?.outcome, "refused");
  assert.equal(unknown?.errorCode, 401002);
  assert.deepEqual(
    unknown?.steps.map((s) => `${s.step} ${s.outcome}`),
    ["checkRequest passed", "findCandidates passed", "attestDevice failed"],
  );
  assert.match(unknown?.steps[1]?.detail ?? "", /no individual enrollment; 0 enrollment groups to try/);

  await until(async () => (await attemptsOf("wrong-key-dev")).status === 200, 5_000, "the refusal kept");
  const wrong = (await attemptsOf("wrong-key-dev")).attempts[0];
  assert.equal(wrong?.outcome, "refused");
  assert.match(wrong?.steps.at(-1)?.detail ?? "", /\S/);
});

test("provisio registration attempts prints them, as JSON or as a table", async () => {
  const json = await runProvisio(["registration", "attempts", "--data-dir", p.dataDir, "--rid", "explained-dev"]);
  assert.equal(json.code, 0, json.stderr);
  assert.equal((JSON.parse(json.stdout) as RegistrationAttempt[]).length, 2);
  const table = await runProvisio([
    "registration",
    "attempts",
    "--data-dir",
    p.dataDir,
    "--registration-id",
    "never-enrolled-dev",
    "--output",
    "table",
  ]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /refused 401002 over http from/);
  assert.match(table.stdout, /^ {2}ok {3}findCandidates +[\d.]+ ms {2}no individual enrollment/m);
  assert.match(table.stdout, /^ {2}FAIL attestDevice/m);
  const missing = await runProvisio(["registration", "attempts", "--data-dir", p.dataDir, "--rid", "nobody-at-all"]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /nobody-at-all/);
});

test("a device nobody has heard of is 404; the API needs RegistrationStatusRead", async () => {
  const none = await attemptsOf("nobody-at-all");
  assert.equal(none.status, 404);
  assert.match(none.text, /"errorCode":404/);
  const anonymous = await call(p, "GET", "/registrations/explained-dev/attempts", { auth: null });
  assert.equal(anonymous.status, 401);
});
