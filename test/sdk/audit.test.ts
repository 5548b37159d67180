// The audit trail (issue 20 "Audit"): changes through the service and management APIs, and key
// reads, recorded with who (policy or token subject), what, when and from where; read back through
// the management API, paged and filtered; still there after a restart.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { StoredAuditEvent } from "../../src/domain/audit.js";
import { enrollIndividual } from "../support/enrollments.js";
import { call } from "../support/management.js";
import { startIssuer, type TestIssuer } from "../support/oidc-issuer.js";
import { newDataDir, type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { serviceClient, tokenServiceClient } from "../support/service-client.js";
import { until } from "../support/until.js";

const MGMT = "api-version=2022-02-05";
let issuer: TestIssuer;
let p: ProvisioProcess;
const dataDir = newDataDir();
const start = () => startProvisio({ dataDir, env: { PROVISIO_OIDC_ISSUER: issuer.url } });

before(async () => {
  issuer = await startIssuer();
  p = await start();
});
after(async () => {
  await p.dispose();
  await issuer.close();
});

async function trail(query = "", headers: Record<string, string> = {}) {
  const r = await call(p, "GET", `/provisioningServices/provisio/auditEvents?${MGMT}${query}`, { headers });
  assert.equal(r.status, 200, r.text);
  return { events: (r.json() as { value: StoredAuditEvent[] }).value, continuation: r.headers["x-ms-continuation"] };
}

test("changes and key reads are recorded with the policy, the request, its status and the address", async () => {
  const svc = serviceClient(p);
  await enrollIndividual(svc, "audited-1");
  await svc.getIndividualEnrollment("audited-1"); // a read: not recorded
  await svc.getIndividualEnrollmentAttestationMechanism("audited-1"); // reveals keys: recorded
  await svc.deleteIndividualEnrollment("audited-1");
  const rules = [{ filterName: "all", action: "Accept", ipMask: "0.0.0.0/0", target: "all" }];
  const put = await call(p, "PUT", `/provisioningServices/provisio?${MGMT}`, {
    body: JSON.stringify({ properties: { ipFilterRules: rules } }),
  });
  assert.equal(put.status, 200, put.text);
  await call(p, "POST", `/provisioningServices/provisio/listkeys?${MGMT}`);

  // Written once the answer is sent: wait for the last one.
  await until(async () => (await trail()).events.length >= 5, 5_000, "five events");
  const { events } = await trail();
  assert.deepEqual(
    events.slice(0, 5).map((e) => `${e.method} ${e.path} ${e.status}`),
    [
      "POST /provisioningServices/provisio/listkeys 200",
      "PUT /provisioningServices/provisio 200",
      "DELETE /enrollments/audited-1 204",
      "POST /enrollments/audited-1/attestationmechanism 200",
      "PUT /enrollments/audited-1 200",
    ],
  );
  for (const e of events) {
    assert.deepEqual(e.caller, { kind: "policy", name: "provisioningserviceowner" });
    assert.equal(e.callerIp, "127.0.0.1");
    assert.equal(e.service, "provisio");
    assert.ok(Date.now() - Date.parse(e.at) < 60_000);
  }
});

test("a token's subject is recorded, refused writes too", async () => {
  const token = (roles: string[]) => ({
    async getToken() {
      const t = await issuer.sign({
        sub: "pipeline-7",
        preferred_username: "ci@example",
        aud: "https://azure-devices-provisioning.net",
        roles,
      });
      return { token: t, expiresOnTimestamp: Date.now() + 3600_000 };
    },
  });
  const reader = tokenServiceClient(p, token(["DeviceProvisioningService.DataReader"]) as never);
  await assert.rejects(
    reader.createOrUpdateIndividualEnrollment({
      registrationId: "by-reader",
      attestation: { type: "symmetricKey" },
    } as never),
  );
  await until(async () => (await trail("&caller=pipeline-7")).events.length === 1, 5_000, "the refused write");
  const [event] = (await trail("&caller=pipeline-7")).events;
  assert.deepEqual(event?.caller, { kind: "token", name: "pipeline-7", displayName: "ci@example" });
  assert.equal(event?.status, 401);
  assert.equal(event?.path, "/enrollments/by-reader");
});

test("paged with x-ms-max-item-count and x-ms-continuation, filtered by time; bad filters are 400", async () => {
  const whole = (await trail()).events;
  const first = await trail("", { "x-ms-max-item-count": "2" });
  assert.equal(first.events.length, 2);
  assert.equal(typeof first.continuation, "string");
  const second = await trail("", { "x-ms-max-item-count": "2", "x-ms-continuation": first.continuation as string });
  assert.deepEqual(
    [...first.events, ...second.events].map((e) => e.seq),
    whole.slice(0, 4).map((e) => e.seq),
  );
  const future = await trail(`&since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`);
  assert.deepEqual(future.events, []);
  const bad = await call(p, "GET", `/provisioningServices/provisio/auditEvents?${MGMT}&since=yesterday`);
  assert.equal(bad.status, 400);
  assert.match(bad.text, /"errorCode":400013.*'since'/);
  const noAuth = await call(p, "GET", `/provisioningServices/provisio/auditEvents?${MGMT}`, { auth: null });
  assert.equal(noAuth.status, 401);
});

test("the trail survives a restart", async () => {
  const before = (await trail()).events;
  await p.stop();
  p = await start();
  assert.deepEqual((await trail()).events, before);
});
