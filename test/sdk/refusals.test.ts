// What a refused device is told (issue 15.7), case by case, on every device transport: the same
// status and DPS error body everywhere. MQTT accepts the CONNECT and answers on
// $dps/registrations/res/{status}/; AMQP refuses a SAS device at SASL, as DPS does, and rejects a
// request with the DPS error as the description (README "What a refused device is told").
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { createSasToken } from "../../src/attestation/sas-token.js";
import { AMQP_FLAVOURS, connectDpsAmqp } from "../support/dps-amqp.js";
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
  /** Over AMQP: refused at SASL (a SAS token was presented), or the request rejected with this condition. */
  amqp: "sasl" | string;
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
    amqp: "sasl",
  },
  {
    what: "an expired token",
    registrationId: "refused-dev",
    token: (p, key) => sas(key, `${p.info.idScope}/registrations/refused-dev`, 1_000_000),
    status: 401,
    errorCode: 401002,
    message: /expired/,
    amqp: "sasl",
  },
  {
    what: "no credential at all",
    registrationId: "refused-dev",
    token: () => undefined,
    status: 401,
    errorCode: 401002,
    message: /neither a SharedAccessSignature nor a client certificate/,
    amqp: "amqp:unauthorized-access",
  },
  {
    what: "no matching enrollment",
    registrationId: "nobody-enrolled",
    token: (p) => sas(otherKey, `${p.info.idScope}/registrations/nobody-enrolled`),
    status: 401,
    errorCode: 401002,
    message: /no enrollment matches 'nobody-enrolled'/,
    amqp: "sasl",
  },
  {
    what: "an unknown ID scope",
    registrationId: "refused-dev",
    idScope: "0ne00000000",
    token: (_p, key) => sas(key, "0ne00000000/registrations/refused-dev"),
    status: 404,
    errorCode: 404301,
    message: /No provisioning service here has ID scope '0ne00000000'. Check the ID scope the device was given/,
    amqp: "sasl",
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

    for (const flavour of AMQP_FLAVOURS) {
      const told = c.amqp === "sasl" ? "SASL fails" : `the register is rejected ${c.amqp} with ${c.errorCode}`;
      test(`${flavour}: ${c.what}: ${told}`, async () => {
        const token = c.token(p, key);
        const connected = await connectDpsAmqp(p, flavour, {
          registrationId: c.registrationId,
          ...(c.idScope ? { idScope: c.idScope } : {}),
          ...(token ? { password: token } : {}),
        });
        if (c.amqp === "sasl") {
          assert.equal(connected.ok, false, "refused at SASL");
          if (!connected.ok) assert.match(connected.error, /amqp:unauthorized-access/);
          return;
        }
        assert.ok(connected.ok, connected.ok ? "" : connected.error);
        try {
          const a = await connected.device.register();
          assert.equal(a.kind, "rejected");
          if (a.kind !== "rejected") return;
          assert.equal(a.condition, c.amqp);
          assertBody(c, c.status, JSON.parse(a.description) as Record<string, unknown>, flavour);
          assert.equal(a.info, undefined, "no retry-after below 429");
        } finally {
          await connected.device.end();
        }
      });
    }
  }

  test("nothing was recorded for any refused attempt", async () => {
    await assert.rejects(serviceClient(p).getDeviceRegistrationState("refused-dev"), /Not found/);
  });
});
