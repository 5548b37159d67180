// What a refused device is told (issue 15.7), case by case, on HTTPS, MQTT and MQTT over
// WebSockets: the same status and DPS error body everywhere. MQTT accepts the CONNECT and answers
// on $dps/registrations/res/{status}/ (README "What a refused device is told").
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { createSasToken } from "../../src/attestation/sas-token.js";
import { connectDps, GUID, MQTT_FLAVOURS } from "../support/dps-mqtt.js";
import { enrollIndividual } from "../support/enrollments.js";
import { call } from "../support/management.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { serviceClient } from "../support/service-client.js";

interface Case {
  what: string;
  registrationId: string;
  idScope?: string;
  /** The SAS token, or undefined for none. */
  token: (p: ProvisioProcess, key: string) => string | undefined;
  status: number;
  errorCode: number;
  message: RegExp;
}

const sas = (key: string, resource: string, se = Math.floor(Date.now() / 1000) + 600) =>
  createSasToken(key, resource, se, "registration");
const otherKey = randomBytes(32).toString("base64");

const CASES: Case[] = [
  {
    what: "a wrong key",
    registrationId: "refused-dev",
    token: (p) => sas(otherKey, `${p.info.idScope}/registrations/refused-dev`),
    status: 401,
    errorCode: 401002,
    message: /signature does not verify/,
  },
  {
    what: "an expired token",
    registrationId: "refused-dev",
    token: (p, key) => sas(key, `${p.info.idScope}/registrations/refused-dev`, 1_000_000),
    status: 401,
    errorCode: 401002,
    message: /expired/,
  },
  {
    what: "no credential at all",
    registrationId: "refused-dev",
    token: () => undefined,
    status: 401,
    errorCode: 401002,
    message: /neither a SharedAccessSignature nor a client certificate/,
  },
  {
    what: "no matching enrollment",
    registrationId: "nobody-enrolled",
    token: (p) => sas(otherKey, `${p.info.idScope}/registrations/nobody-enrolled`),
    status: 401,
    errorCode: 401002,
    message: /no enrollment matches 'nobody-enrolled'/,
  },
  {
    what: "an unknown ID scope",
    registrationId: "refused-dev",
    idScope: "0ne00000000",
    token: (_p, key) => sas(key, "0ne00000000/registrations/refused-dev"),
    status: 404,
    errorCode: 404301,
    message: /No provisioning service has ID scope '0ne00000000'/,
  },
];

describe("what a refused device is told, on every transport", () => {
  let p: ProvisioProcess;
  let key: string;
  before(async () => {
    p = await startProvisio();
    key = await enrollIndividual(serviceClient(p), "refused-dev");
  });
  after(async () => {
    await p.dispose();
  });

  const assertBody = (c: Case, status: number, body: Record<string, unknown>, where: string) => {
    assert.equal(status, c.status, `${where}: ${JSON.stringify(body)}`);
    assert.equal(body.errorCode, c.errorCode, where);
    assert.match(String(body.message), c.message, where);
    assert.match(String(body.trackingId), GUID, where);
    assert.ok(!Number.isNaN(Date.parse(String(body.timestampUtc))), where);
  };

  for (const c of CASES) {
    test(`HTTPS: ${c.what} is ${c.status} ${c.errorCode} with the reason`, async () => {
      const token = c.token(p, key);
      const r = await call(
        p,
        "PUT",
        `/${c.idScope ?? p.info.idScope}/registrations/${c.registrationId}/register?api-version=2019-03-31`,
        { body: JSON.stringify({ registrationId: c.registrationId }), auth: token ?? null },
      );
      assertBody(c, r.status, r.json() as Record<string, unknown>, "HTTPS");
      assert.equal(r.headers["x-ms-error-code"], String(c.errorCode));
    });

    for (const flavour of MQTT_FLAVOURS) {
      test(`${flavour}: ${c.what}: CONNECT accepted, res/${c.status} with ${c.errorCode} and the reason`, async () => {
        const token = c.token(p, key);
        const device = await connectDps(p, flavour, {
          registrationId: c.registrationId,
          ...(c.idScope ? { idScope: c.idScope } : {}),
          ...(token ? { password: token } : {}),
        });
        try {
          assert.equal(device.returnCode, 0);
          const a = await device.register();
          assertBody(c, a.status, a.body, flavour);
          assert.equal(a.query.get("retry-after"), null, "no retry-after below 429: the SDKs would retry");
        } finally {
          await device.end();
        }
      });
    }
  }

  test("nothing was recorded for any refused attempt", async () => {
    await assert.rejects(serviceClient(p).getDeviceRegistrationState("refused-dev"), /Not found/);
  });
});
