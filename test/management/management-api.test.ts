// The management API (management.md §1-3): instances with their own ID scope, policies and
// records, linked hub records, and the rules for who may manage what.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import type { IndividualEnrollment } from "azure-iot-provisioning-service/dist/interfaces.js";
import { formatConnectionString } from "../../src/domain/connection-string.js";
import { call } from "../support/management.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { serviceClient } from "../support/service-client.js";

interface Resource {
  name: string;
  etag: string;
  properties: {
    idScope: string;
    serviceOperationsHostName: string;
    allocationPolicy: string;
    iotHubs: {
      name: string;
      connectionString: string;
      location: string;
      allocationWeight: number;
      applyAllocationPolicy: boolean;
    }[];
    authorizationPolicies: unknown;
  };
}
interface Keys {
  value: { keyName: string; primaryKey: string; secondaryKey: string; rights: string }[];
}

const enrollment = (registrationId: string) =>
  ({ registrationId, attestation: { type: "symmetricKey" } }) as IndividualEnrollment;
const hubCs = (host: string, key = Buffer.alloc(32, 9).toString("base64")) =>
  `HostName=${host};SharedAccessKeyName=iothubowner;SharedAccessKey=${key}`;

describe("management API", () => {
  let p: ProvisioProcess;
  before(async () => {
    p = await startProvisio();
  });
  after(async () => {
    await p.dispose();
  });

  test("the primary instance is listed with its ID scope and no keys; listkeys shows the owner policy", async () => {
    const list = await call(p, "GET", "/provisioningServices");
    assert.equal(list.status, 200);
    const [primary] = (list.json() as { value: Resource[] }).value;
    assert.equal(primary?.name, "provisio");
    assert.equal(primary?.properties.idScope, p.info.idScope);
    assert.equal(primary?.properties.serviceOperationsHostName, "localhost");
    assert.equal(primary?.properties.allocationPolicy, "Hashed");
    assert.equal(primary?.properties.authorizationPolicies, null);
    const keys = (await call(p, "POST", "/provisioningServices/provisio/listkeys")).json() as Keys;
    const owner = keys.value.find((k) => k.keyName === "provisioningserviceowner");
    assert.equal(
      owner?.rights,
      "ServiceConfig, EnrollmentRead, EnrollmentWrite, RegistrationStatusRead, RegistrationStatusWrite, DeviceConnect",
    );
    assert.ok(p.info.serviceConnectionString.endsWith(owner?.primaryKey ?? "?"));
  });

  test("the ARM path prefix is accepted", async () => {
    const r = await call(
      p,
      "GET",
      "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Devices/provisioningServices/provisio?api-version=2022-02-05",
    );
    assert.equal(r.status, 200);
    assert.equal((r.json() as Resource).name, "provisio");
  });

  test("a second instance gets its own ID scope, host name, certificate name, policies and records", async () => {
    const created = await call(p, "PUT", "/provisioningServices/tenant-b", {
      body: JSON.stringify({ location: "local", properties: { allocationPolicy: "geolatency" } }),
    });
    assert.equal(created.status, 201, created.text);
    const b = created.json() as Resource;
    assert.match(b.properties.idScope, /^0ne[0-9A-F]{8}$/);
    assert.notEqual(b.properties.idScope, p.info.idScope);
    assert.equal(b.properties.serviceOperationsHostName, "tenant-b.localhost");
    assert.equal(b.properties.allocationPolicy, "GeoLatency");

    // The server certificate was reissued (same CA) to cover the new host name.
    const cert = new X509Certificate(readFileSync(`${p.dataDir}/tls/server.pem`));
    assert.match(cert.subjectAltName ?? "", /DNS:tenant-b\.localhost/);
    assert.ok(cert.verify(new X509Certificate(p.ca).publicKey));

    const keys = (await call(p, "POST", "/provisioningServices/tenant-b/listkeys")).json() as Keys;
    const owner = keys.value[0];
    assert.ok(owner);
    const csB = formatConnectionString({
      hostName: "tenant-b.localhost",
      keyName: owner.keyName,
      key: owner.primaryKey,
    });
    const clientB = serviceClient(p, csB, { resolveTo: "127.0.0.1" });
    await clientB.createOrUpdateIndividualEnrollment(enrollment("shared-name"));
    const clientA = serviceClient(p);
    await assert.rejects(clientA.getIndividualEnrollment("shared-name"), /Not found/, "records are per instance");
    await clientA.createOrUpdateIndividualEnrollment(enrollment("shared-name"));

    // B's key does not open A, and B's policies may not manage other instances.
    const bOnA = formatConnectionString({ hostName: "localhost", keyName: owner.keyName, key: owner.primaryKey });
    await assert.rejects(
      serviceClient(p, bOnA).getIndividualEnrollment("shared-name"),
      (e: Error) => e.name === "UnauthorizedError",
    );
    const listByB = await call(p, "GET", "/provisioningServices", { connectionString: csB });
    assert.equal(listByB.status, 401);
    assert.match(listByB.text, /primary/);
    const ownByB = await call(p, "GET", "/provisioningServices/tenant-b", { connectionString: csB });
    assert.equal(ownByB.status, 200, "an instance manages itself");

    const dup = await call(p, "PUT", "/provisioningServices/TENANT-B", { body: JSON.stringify({ properties: {} }) });
    assert.equal(dup.status, 200, "PUT on an existing name (any case) updates it");

    const deleted = await call(p, "DELETE", "/provisioningServices/tenant-b");
    assert.equal(deleted.status, 200);
    assert.equal((await call(p, "GET", "/provisioningServices/tenant-b")).status, 404);
    await clientA.getIndividualEnrollment("shared-name");
  });

  test("policies: replace the set, generate missing keys, and the new rights apply at once", async () => {
    const keys = (await call(p, "POST", "/provisioningServices/provisio/listkeys")).json() as Keys;
    const put = await call(p, "PUT", "/provisioningServices/provisio", {
      body: JSON.stringify({
        properties: {
          authorizationPolicies: [
            ...keys.value,
            { keyName: "registrar", rights: "registrationstatusread , EnrollmentWrite" },
          ],
        },
      }),
    });
    assert.equal(put.status, 200, put.text);
    const after = (await call(p, "POST", "/provisioningServices/provisio/listkeys")).json() as Keys;
    const registrar = after.value.find((k) => k.keyName === "registrar");
    assert.equal(registrar?.rights, "RegistrationStatusRead, EnrollmentWrite");
    assert.equal(Buffer.from(registrar?.primaryKey ?? "", "base64").length, 32);
    const owner = after.value.find((k) => k.keyName === "provisioningserviceowner");
    assert.equal(
      owner?.primaryKey,
      keys.value.find((k) => k.keyName === "provisioningserviceowner")?.primaryKey,
      "kept",
    );

    const cs = formatConnectionString({
      hostName: "localhost",
      keyName: "registrar",
      key: registrar?.secondaryKey ?? "",
    });
    const noConfig = await call(p, "GET", "/provisioningServices/provisio", { connectionString: cs });
    assert.equal(noConfig.status, 401);
    assert.match(noConfig.text, /ServiceConfig/);
  });

  test("network settings Provisio does not enforce yet are refused with 400 naming them, never stored and ignored", async () => {
    // (IP filter rules and public network access are enforced: test/sdk/ip-filter.test.ts.)
    const before = (await call(p, "GET", "/provisioningServices/provisio")).json() as Resource & {
      properties: Record<string, unknown>;
    };
    // What GET shows is what is enforced: sending it back (az's GET-then-PUT) is accepted.
    assert.deepEqual(before.properties.ipFilterRules, []);
    assert.equal(before.properties.publicNetworkAccess, "Enabled");
    assert.equal(before.properties.minTlsVersion, "1.2");
    const same = await call(p, "PUT", "/provisioningServices/provisio", {
      body: JSON.stringify({
        properties: { ipFilterRules: [], publicNetworkAccess: "Enabled", minTlsVersion: "1.2" },
      }),
    });
    assert.equal(same.status, 200, same.text);
    const refused: [Record<string, unknown>, RegExp][] = [
      [{ minTlsVersion: "1.3" }, /'minTlsVersion: 1.3' cannot be enforced/],
      [{ privateEndpointConnections: [{ name: "pe" }] }, /'privateEndpointConnections' is not enforced/],
      // Without an OpenID Connect issuer nobody could get in (test/sdk/oidc.test.ts enforces it).
      [{ disableLocalAuth: true }, /'disableLocalAuth: true' cannot be enforced without an OpenID Connect issuer/],
    ];
    for (const [properties, message] of refused) {
      for (const name of ["provisio", "fenced-new"]) {
        const r = await call(p, "PUT", `/provisioningServices/${name}`, { body: JSON.stringify({ properties }) });
        assert.equal(r.status, 400, `${name}: ${r.text}`);
        assert.match(r.text, message);
      }
    }
    assert.equal((await call(p, "GET", "/provisioningServices/fenced-new")).status, 404, "nothing was created");
    const after = (await call(p, "GET", "/provisioningServices/provisio")).json() as Resource;
    assert.equal(after.etag, (same.json() as Resource).etag, "nothing was written");
  });

  test("enableDataResidency is set at creation, shown, and cannot change", async () => {
    const created = await call(p, "PUT", "/provisioningServices/resident", {
      body: JSON.stringify({ properties: { enableDataResidency: true } }),
    });
    assert.equal(created.status, 201, created.text);
    assert.equal((created.json() as { properties: Record<string, unknown> }).properties.enableDataResidency, true);
    const change = await call(p, "PUT", "/provisioningServices/resident", {
      body: JSON.stringify({ properties: { enableDataResidency: false } }),
    });
    assert.equal(change.status, 400);
    assert.match(change.text, /'enableDataResidency' is set when a provisioning service is created and cannot change/);
    assert.equal((await call(p, "DELETE", "/provisioningServices/resident")).status, 200);
  });

  test("linked hub records: validated, stored, masked on GET, masked key keeps the secret", async () => {
    const hubs = [
      { connectionString: hubCs("hub-1.example"), location: "West US", allocationWeight: 3 },
      { connectionString: hubCs("hub-2.example"), location: "eastus", applyAllocationPolicy: false },
    ];
    const put = await call(p, "PUT", "/provisioningServices/provisio", {
      body: JSON.stringify({ properties: { iotHubs: hubs } }),
    });
    assert.equal(put.status, 200, put.text);
    const got = (await call(p, "GET", "/provisioningServices/provisio")).json() as Resource;
    assert.deepEqual(
      got.properties.iotHubs.map((h) => [h.name, h.location, h.allocationWeight, h.applyAllocationPolicy]),
      [
        ["hub-1.example", "westus", 3, true],
        ["hub-2.example", "eastus", 1, false],
      ],
    );
    assert.match(got.properties.iotHubs[0]?.connectionString ?? "", /SharedAccessKey=\*\*\*\*$/);

    // GET output PUT back unchanged keeps the stored secrets.
    const echo = await call(p, "PUT", "/provisioningServices/provisio", { body: JSON.stringify(got) });
    assert.equal(echo.status, 200, echo.text);
    const raw =
      readFileSync(`${p.dataDir}/provisio.db-wal`).toString("latin1") +
      readFileSync(`${p.dataDir}/provisio.db`).toString("latin1");
    assert.ok(!raw.includes(Buffer.alloc(32, 9).toString("base64")), "hub keys are encrypted at rest");

    const etagBefore = ((await call(p, "GET", "/provisioningServices/provisio")).json() as Resource).etag;
    for (const [body, pattern] of [
      [{ iotHubs: [{ connectionString: "nonsense", location: "x" }] }, /HostName=/],
      [{ iotHubs: [{ connectionString: hubCs("h.example") }] }, /location/],
      [
        { iotHubs: [{ connectionString: hubCs("h.example"), location: "x", allocationWeight: 1001 }] },
        /allocationWeight/,
      ],
      [
        {
          iotHubs: [
            { connectionString: hubCs("h.example"), location: "x" },
            { connectionString: hubCs("H.example"), location: "y" },
          ],
        },
        /twice/,
      ],
      [{ iotHubs: [{ connectionString: hubCs("new.example", "****"), location: "x" }] }, /masked/],
      [{ allocationPolicy: "custom" }, /Hashed, GeoLatency or Static/],
      [{ authorizationPolicies: [{ keyName: "x", rights: "Everything" }] }, /rights/],
      [{ idScope: "0ne00000000" }, /idScope/],
    ] as const) {
      const r = await call(p, "PUT", "/provisioningServices/provisio", { body: JSON.stringify({ properties: body }) });
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match(r.text, pattern);
    }
    const unchanged = (await call(p, "GET", "/provisioningServices/provisio")).json() as Resource;
    assert.equal(unchanged.properties.iotHubs.length, 2, "a refused PUT changes nothing");
    assert.equal(unchanged.etag, etagBefore);
  });

  test("bad names, unknown instances and the primary's deletion are refused", async () => {
    const bad = await call(p, "PUT", "/provisioningServices/-bad", { body: "{}" });
    assert.equal(bad.status, 400);
    assert.match(bad.text, /not a valid name/);
    assert.equal((await call(p, "GET", "/provisioningServices/nope")).status, 404);
    const primary = await call(p, "DELETE", "/provisioningServices/provisio");
    assert.equal(primary.status, 400);
    assert.match(primary.text, /primary/);
    assert.equal((await call(p, "GET", "/provisioningServices", { auth: null })).status, 401);
  });
});
