// What the console needs from a real `provisio serve`, over TLS, without a browser: the page
// and its files at `/`, the service API extensions it reads (who am I, counts, every
// registration record, search by prefix) and cross-origin calls to a built-in hub.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { deriveKey, httpTransport, registerWithKey } from "../support/device-clients.js";
import { enrollGroup, enrollIndividual } from "../support/enrollments.js";
import { addPolicy, call } from "../support/management.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { serviceClient } from "../support/service-client.js";

const API = "?api-version=2021-10-01";

describe("console: what the server offers it", () => {
  let p: ProvisioProcess;
  before(async () => {
    p = await startProvisio();
  });
  after(() => p?.dispose());

  test("a browser at / gets the console page with a strict content policy; API clients get a DPS error", async () => {
    const page = await call(p, "GET", "/", { auth: null, headers: { accept: "text/html,*/*" } });
    assert.equal(page.status, 200);
    assert.match(String(page.headers["content-type"]), /^text\/html/);
    assert.match(page.text, /<script type="module" src="\/console\/app.js">/);
    assert.match(String(page.headers["content-security-policy"]), /script-src 'self'/);
    const script = await call(p, "GET", "/console/app.js", { auth: null });
    assert.equal(script.status, 200);
    assert.match(String(script.headers["content-type"]), /^text\/javascript/);
    const again = await call(p, "GET", "/console/app.js", {
      auth: null,
      headers: { "if-none-match": String(script.headers.etag) },
    });
    assert.equal(again.status, 304, "revalidated by etag");
    const api = await call(p, "GET", "/", { auth: null, headers: { accept: "application/json" } });
    assert.equal(api.status, 404);
    assert.equal((api.json() as { errorCode: number }).errorCode, 404001);
  });

  test("GET /caller names the service and the caller's rights; without a token it is a 401", async () => {
    const owner = await call(p, "GET", `/caller${API}`);
    assert.equal(owner.status, 200, owner.text);
    assert.deepEqual(owner.json(), {
      service: { name: "provisio", idScope: p.info.idScope, hostName: "localhost" },
      caller: {
        kind: "policy",
        name: "provisioningserviceowner",
        rights: [
          "ServiceConfig",
          "EnrollmentRead",
          "EnrollmentWrite",
          "RegistrationStatusRead",
          "RegistrationStatusWrite",
          "DeviceConnect",
        ],
      },
    });
    const reader = await addPolicy(p, "console-reader", "EnrollmentRead");
    const r = await call(p, "GET", `/caller${API}`, { connectionString: reader });
    assert.deepEqual((r.json() as { caller: { rights: string[] } }).caller.rights, ["EnrollmentRead"]);
    const none = await call(p, "GET", `/caller${API}`, { auth: null });
    assert.equal(none.status, 401);
  });

  test("statistics, every registration record, and search by id prefix", async () => {
    const svc = serviceClient(p);
    for (const id of ["stat-a1", "stat-a2", "stat-b1"]) await enrollIndividual(svc, id);
    const groupKey = await enrollGroup(svc, "stat-group");
    const key = await enrollIndividual(svc, "stat-c1");
    await registerWithKey(p, httpTransport(p), "stat-c1", key);
    await registerWithKey(p, httpTransport(p), "stat-g1", deriveKey(groupKey, "stat-g1"));

    const stats = (await call(p, "GET", `/statistics${API}`)).json() as Record<string, number>;
    assert.ok((stats.individualEnrollments ?? 0) >= 4);
    assert.ok((stats.enrollmentGroups ?? 0) >= 1);
    assert.ok((stats.registrations ?? 0) >= 2);

    const query = (path: string, headers: Record<string, string> = {}) =>
      call(p, "POST", path, { body: JSON.stringify({ query: "*" }), headers });
    const records = await query(`/registrations/query${API}&prefix=stat-`);
    assert.equal(records.status, 200, records.text);
    assert.deepEqual(
      (records.json() as { registrationId: string; assignedHub: string }[]).map((r) => [
        r.registrationId,
        r.assignedHub,
      ]),
      [
        ["stat-c1", "hub-1.localhost"],
        ["stat-g1", "hub-1.localhost"],
      ],
    );
    const first = await query(`/enrollments/query${API}&prefix=STAT-A`, { "x-ms-max-item-count": "1" });
    assert.deepEqual(
      (first.json() as { registrationId: string }[]).map((e) => e.registrationId),
      ["stat-a1"],
    );
    const token = String(first.headers["x-ms-continuation"]);
    const second = await query(`/enrollments/query${API}&prefix=STAT-A`, {
      "x-ms-max-item-count": "1",
      "x-ms-continuation": token,
    });
    assert.deepEqual(
      (second.json() as { registrationId: string }[]).map((e) => e.registrationId),
      ["stat-a2"],
    );
    const third = await query(`/enrollments/query${API}&prefix=stat-a`, {
      "x-ms-max-item-count": "1",
      "x-ms-continuation": String(second.headers["x-ms-continuation"]),
    });
    assert.deepEqual(third.json(), []);
    assert.equal(third.headers["x-ms-continuation"], undefined, "the listing ends at the prefix");
    const reader = await addPolicy(p, "enrollment-only", "EnrollmentRead");
    const refused = await call(p, "POST", `/registrations/query${API}`, { body: "{}", connectionString: reader });
    assert.equal(refused.status, 401);
  });

  test("a built-in hub answers the console's cross-origin calls, still signed with the hub's policy", async () => {
    const hub = p.info.hubs[0];
    assert.ok(hub);
    const origin = `https://localhost:${p.info.ports.https}`;
    const preflight = await call(p, "OPTIONS", "/devices", {
      host: hub.hostName,
      auth: null,
      headers: { origin, "access-control-request-method": "GET", "access-control-request-headers": "authorization" },
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers["access-control-allow-origin"], origin);
    assert.match(String(preflight.headers["access-control-allow-headers"]), /Authorization/);
    const devices = await call(p, "GET", "/devices", {
      host: hub.hostName,
      connectionString: hub.connectionString,
      headers: { origin },
    });
    assert.equal(devices.status, 200, devices.text);
    assert.equal(devices.headers["access-control-allow-origin"], origin);
    const unsigned = await call(p, "GET", "/devices", { host: hub.hostName, auth: null, headers: { origin } });
    assert.equal(unsigned.status, 401);
  });
});
