// Bearer tokens on the service and management APIs (issue 20 "Identity"): the real service SDK,
// built with fromTokenCredential as for Azure AD, against a Provisio that trusts a local OpenID
// Connect issuer; the token's roles decide what it may do; SAS policies keep working beside it.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { ProvisioningServiceClient } from "azure-iot-provisioning-service";
import { enrollIndividual } from "../support/enrollments.js";
import { call } from "../support/management.js";
import { startIssuer, type TestIssuer } from "../support/oidc-issuer.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { serviceClient, serviceRefusal, tokenServiceClient } from "../support/service-client.js";
import { until } from "../support/until.js";

let issuer: TestIssuer;
let p: ProvisioProcess;

before(async () => {
  issuer = await startIssuer();
  p = await startProvisio({ env: { PROVISIO_OIDC_ISSUER: issuer.url } });
});
after(async () => {
  await p.dispose();
  await issuer.close();
});

type Credential = Parameters<typeof tokenServiceClient>[1];
const DPS_AUDIENCE = "https://azure-devices-provisioning.net";

/** A TokenCredential as @azure/identity's: asked for the SDK's scope, answers a token for it. */
function credential(claims: Record<string, unknown>, scopes: string[] = []): Credential {
  return {
    async getToken(scope: string | string[]) {
      scopes.push(...(Array.isArray(scope) ? scope : [scope]));
      const token = await issuer.sign({ aud: DPS_AUDIENCE, ...claims });
      return { token, expiresOnTimestamp: Date.now() + 3600_000 };
    },
  } as Credential;
}

const enrollment = (registrationId: string) =>
  ({ registrationId, attestation: { type: "symmetricKey" } }) as unknown as Parameters<
    ProvisioningServiceClient["createOrUpdateIndividualEnrollment"]
  >[0];

test("a Data Contributor token writes and reads enrollments through fromTokenCredential", async () => {
  const scopes: string[] = [];
  const svc = tokenServiceClient(
    p,
    credential({ sub: "ci-pipeline", roles: ["DeviceProvisioningService.DataContributor"] }, scopes),
  );
  const created = await svc.createOrUpdateIndividualEnrollment(enrollment("oidc-device"));
  assert.equal(created.responseBody.registrationId, "oidc-device");
  const read = await svc.getIndividualEnrollment("oidc-device");
  assert.equal(read.responseBody.attestation.type, "symmetricKey");
  assert.deepEqual([...new Set(scopes)], [`${DPS_AUDIENCE}/.default`], "the scope the SDK asks the credential for");
  await svc.deleteIndividualEnrollment("oidc-device");
});

test("a Data Reader token reads but may not write; a token without a mapped role may do nothing", async () => {
  await enrollIndividual(serviceClient(p), "oidc-read-me");
  const reader = tokenServiceClient(
    p,
    credential({ sub: "auditor", groups: ["DeviceProvisioningService.DataReader"] }),
  );
  assert.equal((await reader.getIndividualEnrollment("oidc-read-me")).responseBody.registrationId, "oidc-read-me");
  const denied = await serviceRefusal(reader.createOrUpdateIndividualEnrollment(enrollment("oidc-nope")));
  assert.equal(denied.code, 401004);
  assert.match(denied.message, /bearer token of 'auditor' carries no role that grants EnrollmentWrite/);

  const nobody = tokenServiceClient(p, credential({ sub: "stranger", roles: ["Something.Else"] }));
  assert.equal((await serviceRefusal(nobody.getIndividualEnrollment("oidc-read-me"))).code, 401004);
});

test("tokens that are expired, for another audience or issuer, or signed by another key are refused", async () => {
  const get = (token: string) =>
    call(p, "GET", "/enrollments/oidc-read-me?api-version=2021-10-01", { auth: `Bearer ${token}` });
  const roles = ["DeviceProvisioningService.DataContributor"];
  const now = Math.floor(Date.now() / 1000);

  const expired = await get(await issuer.sign({ sub: "a", aud: DPS_AUDIENCE, roles, exp: now - 300 }));
  assert.equal(expired.status, 401);
  assert.match(expired.text, /"errorCode":401003.*bearer token expired at/);

  const audience = await get(await issuer.sign({ sub: "a", aud: "https://management.example", roles }));
  assert.match(audience.text, /"errorCode":401002.*not for this service/);

  const otherIssuer = await get(await issuer.sign({ sub: "a", aud: DPS_AUDIENCE, roles, iss: "https://evil.example" }));
  assert.match(otherIssuer.text, /"errorCode":401002.*not from the issuer/);

  const stranger = await get(await issuer.sign({ sub: "a", aud: DPS_AUDIENCE, roles }, { key: "stranger" }));
  assert.match(stranger.text, /"errorCode":401002.*signature does not verify/);

  const garbage = await get("not-a-jwt");
  assert.match(garbage.text, /"errorCode":401002.*not a valid JWT/);

  // IoT Hub's audience is taken too (behaviors.md §10.4).
  const hubAudience = await get(await issuer.sign({ sub: "a", aud: "https://iothubs.azure.net", roles }));
  assert.equal(hubAudience.status, 200);
});

test("the ServiceConfig role opens the management API; the data roles do not", async () => {
  const path = "/provisioningServices/provisio?api-version=2022-02-05";
  const config = await issuer.sign({
    sub: "operator",
    aud: DPS_AUDIENCE,
    roles: ["DeviceProvisioningService.ServiceConfig"],
  });
  assert.equal((await call(p, "GET", path, { auth: `Bearer ${config}` })).status, 200);
  const data = await issuer.sign({
    sub: "ci",
    aud: DPS_AUDIENCE,
    roles: ["DeviceProvisioningService.DataContributor"],
  });
  const denied = await call(p, "GET", path, { auth: `Bearer ${data}` });
  assert.equal(denied.status, 401);
  assert.match(denied.text, /no role that grants ServiceConfig/);
});

test("a rotated signing key is fetched when a token names it; SAS policies keep working", async () => {
  await issuer.rotate();
  const token = await issuer.sign({ sub: "a", aud: DPS_AUDIENCE, roles: ["DeviceProvisioningService.DataReader"] });
  const before = issuer.jwksFetches();
  await until(
    async () =>
      (await call(p, "GET", "/enrollments/oidc-read-me?api-version=2021-10-01", { auth: `Bearer ${token}` })).status ===
      200,
    40_000,
    "the new key taken",
  );
  assert.ok(issuer.jwksFetches() > before);
  assert.equal(
    (await serviceClient(p).getIndividualEnrollment("oidc-read-me")).responseBody.registrationId,
    "oidc-read-me",
  );
});

test("disableLocalAuth: the service API takes bearer tokens only; the management API keeps SAS", async () => {
  const path = "/provisioningServices/provisio?api-version=2022-02-05";
  const set = (value: unknown) =>
    call(p, "PUT", path, { body: JSON.stringify({ properties: { disableLocalAuth: value } }) });
  assert.equal((await set("yes")).status, 400);
  const on = await set(true);
  assert.equal(on.status, 200, on.text);
  assert.equal((on.json() as { properties: { disableLocalAuth: boolean } }).properties.disableLocalAuth, true);
  try {
    const sas = await serviceRefusal(serviceClient(p).getIndividualEnrollment("oidc-read-me"));
    assert.equal(sas.code, 401002);
    assert.match(sas.message, /shared access policies are disabled for 'provisio' \(disableLocalAuth\)/);
    const reader = tokenServiceClient(p, credential({ sub: "r", roles: ["DeviceProvisioningService.DataReader"] }));
    assert.equal((await reader.getIndividualEnrollment("oidc-read-me")).responseBody.registrationId, "oidc-read-me");
    // The console's sign-in check (GET /caller) refuses the policy too, before anything is shown.
    const whoami = await call(p, "GET", "/caller?api-version=2021-10-01");
    assert.equal(whoami.status, 401);
    assert.match(whoami.text, /shared access policies are disabled for 'provisio'/);
  } finally {
    assert.equal((await set(false)).status, 200);
  }
  assert.equal((await serviceClient(p).getIndividualEnrollment("oidc-read-me")).httpResponse.statusCode, 200);
});

test("without an issuer configured, bearer tokens are refused with a message that says so", async () => {
  const q = await startProvisio();
  try {
    const token = await issuer.sign({ sub: "a", aud: DPS_AUDIENCE });
    const r = await call(q, "GET", "/enrollments/x?api-version=2021-10-01", { auth: `Bearer ${token}` });
    assert.equal(r.status, 401);
    assert.match(r.text, /no OpenID Connect issuer is configured/);
    // Nor may SAS be switched off: nobody could get in.
    const off = await call(q, "PUT", "/provisioningServices/provisio?api-version=2022-02-05", {
      body: JSON.stringify({ properties: { disableLocalAuth: true } }),
    });
    assert.equal(off.status, 400);
    assert.match(off.text, /cannot be enforced without an OpenID Connect issuer/);
  } finally {
    await q.dispose();
  }
});

test("an issuer that cannot be reached: 503 with Retry-After, not a refusal of the caller", async () => {
  const gone = await startIssuer();
  const url = gone.url;
  await gone.close();
  const q = await startProvisio({ env: { PROVISIO_OIDC_ISSUER: url } });
  try {
    const token = await issuer.sign({ sub: "a", aud: DPS_AUDIENCE });
    const r = await call(q, "GET", "/enrollments/x?api-version=2021-10-01", { auth: `Bearer ${token}` });
    assert.equal(r.status, 503);
    assert.equal(r.headers["retry-after"], "5");
    assert.match(r.text, /"errorCode":503002.*issuer's signing keys are unavailable/);
  } finally {
    await q.dispose();
  }
});

test("an issuer that is not https off loopback is refused at start", async () => {
  await assert.rejects(
    startProvisio({ env: { PROVISIO_OIDC_ISSUER: "http://login.example.net/tenant" } }),
    /PROVISIO_OIDC_ISSUER must be an https:\/\/ URL \(http only on loopback\)/,
  );
});
