// TPM attestation end to end (tpm-attestation.md): the real azure-iot-security-tpm client on a
// real software TPM (swtpm) registers over HTTPS with the real provisioning SDK — challenge,
// activation, a SAS signed in the TPM, the hub key delivered wrapped for the TPM — and then sends
// telemetry to its hub with tokens the TPM signs. Refusals by hand: another EK and an unknown id
// get no challenge, a signature not made with the challenge key is refused.
import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import deviceSdk from "azure-iot-device";
import deviceMqtt from "azure-iot-device-mqtt";
import provisioningDevice from "azure-iot-provisioning-device";
import type { ProvisioningServiceClient } from "azure-iot-provisioning-service";
import type { IndividualEnrollment } from "azure-iot-provisioning-service/dist/interfaces.js";
import tpmSecurity from "azure-iot-security-tpm";
import { createSasToken } from "../../src/attestation/sas-token.js";
import { openBlobInSoftware, testEndorsementKey, testStorageRootKey } from "../attestation/tpm/tpm-keys.js";
import { amqpTransport, amqpWsTransport, httpTransport, type RegistrationResult } from "../support/device-clients.js";
import { connectDps, MQTT_FLAVOURS } from "../support/dps-mqtt.js";
import { hubOf, registryClient } from "../support/hub-clients.js";
import { call } from "../support/management.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { serviceClient } from "../support/service-client.js";
import { type SoftwareTpm, startSwtpm } from "../support/swtpm.js";

const { Client, Message } = deviceSdk;
const { Mqtt } = deviceMqtt;
const { ProvisioningDeviceClient } = provisioningDevice;
const { TpmAuthenticationProvider } = tpmSecurity;

const promised = <T>(f: (cb: (err: Error | null | undefined, value?: T) => void) => void): Promise<T> =>
  new Promise((resolve, reject) => f((err, value) => (err ? reject(err) : resolve(value as T))));

const enrollTpm = (svc: ProvisioningServiceClient, registrationId: string, endorsementKey: Buffer) =>
  svc.createOrUpdateIndividualEnrollment({
    registrationId,
    attestation: { type: "tpm", tpm: { endorsementKey: endorsementKey.toString("base64") } },
  } as unknown as IndividualEnrollment);

describe("TPM attestation with the real device SDK on swtpm", () => {
  let p: ProvisioProcess;
  let svc: ProvisioningServiceClient;
  let swtpm: SoftwareTpm;

  before(async () => {
    [p, swtpm] = await Promise.all([startProvisio(), startSwtpm()]);
    svc = serviceClient(p);
  });
  after(async () => {
    await Promise.all([p.dispose(), swtpm.stop()]);
  });

  test("HTTPS: challenge, activation, assigned; the device then sends telemetry with TPM-signed tokens; again rolls its key", async () => {
    const security = swtpm.securityClient("tpm-https-dev");
    const ek = await promised<Buffer>((cb) => security.getEndorsementKey(cb));
    await enrollTpm(svc, "tpm-https-dev", ek);
    // The service API shows the enrollment with its EK.
    const enrolled = (await svc.getIndividualEnrollment("tpm-https-dev")).responseBody;
    assert.equal(enrolled.attestation.type, "tpm");
    assert.equal(enrolled.attestation.tpm?.endorsementKey, ek.toString("base64"));
    type Create = typeof ProvisioningDeviceClient.create;
    const register = async () => {
      const client = ProvisioningDeviceClient.create(
        "localhost",
        p.info.idScope,
        httpTransport(p) as unknown as Parameters<Create>[2],
        security as unknown as Parameters<Create>[3],
      );
      // With a TPM the SDK resolves to the whole operation (tpm-attestation.md §11.4).
      const operation = (await client.register()) as unknown as { registrationState: RegistrationResult };
      return operation.registrationState;
    };
    const result = await register();
    assert.equal(result.status, "assigned");
    assert.equal(result.assignedHub, hubOf(p).hostName);
    assert.equal(result.deviceId, "tpm-https-dev");
    const identity = (await registryClient(p).get("tpm-https-dev")).responseBody;
    const firstKey = identity.authentication?.symmetricKey?.primaryKey;
    assert.ok(firstKey, "the hub identity has the key the TPM now holds");

    // The hub: tokens signed inside the TPM with the key DPS delivered wrapped for it.
    const provider = TpmAuthenticationProvider.fromTpmSecurityClient(result.deviceId, result.assignedHub, security);
    (provider as unknown as { _credentials: Record<string, string> })._credentials.gatewayHostName =
      `127.0.0.1:${p.info.ports.mqtt}`;
    const device = Client.fromAuthenticationProvider(provider as never, Mqtt);
    await device.setOptions({ ca: p.ca.toString() });
    await device.open();
    await device.sendEvent(new Message("from a TPM"));
    await device.close();
    const kept = await call(p, "GET", "/_provisio/messages?deviceId=tpm-https-dev", {
      connectionString: hubOf(p).connectionString,
    });
    assert.deepEqual(
      (kept.json() as { payload: unknown }[]).map((m) => m.payload),
      ["from a TPM"],
    );

    // Registering again is a new challenge and a new hub key.
    assert.equal((await register()).status, "assigned");
    const again = (await registryClient(p).get("tpm-https-dev")).responseBody;
    assert.notEqual(again.authentication?.symmetricKey?.primaryKey, firstKey, "the hub key rolled");
  });

  for (const t of [
    { name: "AMQP", make: () => amqpTransport(p) },
    { name: "AMQP over WebSockets", make: () => amqpWsTransport(p) },
  ]) {
    test(`${t.name}: SASL TPM carries the challenge; the device is assigned with its hub key wrapped for its TPM`, async () => {
      // A TPM of its own: swtpm serves one client at a time.
      const tpm = await startSwtpm();
      try {
        const id = `tpm-${t.name.toLowerCase().replace(/[^a-z]+/g, "-")}`;
        const security = tpm.securityClient(id);
        const ek = await promised<Buffer>((cb) => security.getEndorsementKey(cb));
        await enrollTpm(svc, id, ek);
        type Create = typeof ProvisioningDeviceClient.create;
        const { transport, host } = t.make();
        const client = ProvisioningDeviceClient.create(
          host,
          p.info.idScope,
          transport as unknown as Parameters<Create>[2],
          security as unknown as Parameters<Create>[3],
        );
        const operation = (await client.register()) as unknown as { registrationState: RegistrationResult };
        assert.equal(operation.registrationState.status, "assigned");
        assert.equal(operation.registrationState.deviceId, id);
        // The TPM now holds the hub key: a token it signs verifies against the hub identity.
        const key = (await registryClient(p).get(id)).responseBody.authentication?.symmetricKey?.primaryKey;
        assert.ok(key);
        const data = Buffer.from("check");
        const signed = await promised<Buffer>((cb) => security.signWithIdentity(data, cb));
        assert.deepEqual(Buffer.from(signed), createHmac("sha256", Buffer.from(key, "base64")).update(data).digest());
      } finally {
        await tpm.stop();
      }
    });
  }

  describe("refusals over HTTPS", () => {
    const ek = testEndorsementKey();
    const srk = testStorageRootKey();
    const body = (registrationId: string, endorsementKey = ek.tpm2b) =>
      JSON.stringify({
        registrationId,
        tpm: { endorsementKey: endorsementKey.toString("base64"), storageRootKey: srk.tpm2b.toString("base64") },
      });
    const register = (registrationId: string, endorsementKey?: Buffer, auth: string | null = null) =>
      call(p, "PUT", `/${p.info.idScope}/registrations/${registrationId}/register?api-version=2019-03-31`, {
        body: body(registrationId, endorsementKey),
        auth,
      });

    before(async () => {
      await enrollTpm(svc, "tpm-refused-dev", ek.tpm2b);
    });

    test("the enrolled EK gets a challenge: 401 with authenticationKey and keyName", async () => {
      const r = await register("tpm-refused-dev");
      assert.equal(r.status, 401, r.text);
      const challenge = r.json() as { authenticationKey: string; keyName: string; message: string };
      assert.equal(challenge.keyName, "registration");
      assert.equal(Buffer.from(challenge.authenticationKey, "base64").length, 798);
    });

    test("another EK, or an id nobody enrolled, gets a 401 without a challenge", async () => {
      for (const r of [await register("tpm-refused-dev", testEndorsementKey().tpm2b), await register("nobody-tpm")]) {
        assert.equal(r.status, 401, r.text);
        const reply = r.json() as { errorCode: number; authenticationKey?: string };
        assert.equal(reply.errorCode, 401002);
        assert.equal(reply.authenticationKey, undefined, "no credential for a stranger's TPM");
      }
    });

    test("a SAS not signed with the challenge key is refused; nothing is recorded", async () => {
      assert.equal((await register("tpm-refused-dev")).status, 401);
      const forged = createSasToken(
        randomBytes(32).toString("base64"),
        encodeURIComponent(`${p.info.idScope}/registrations/tpm-refused-dev`),
        Math.floor(Date.now() / 1000) + 600,
        "registration",
      );
      const r = await register("tpm-refused-dev", undefined, forged);
      assert.equal(r.status, 401, r.text);
      assert.match((r.json() as { message: string }).message, /challenge/);
      await assert.rejects(svc.getDeviceRegistrationState("tpm-refused-dev"), /Not found/);
    });

    test("by hand: the answer to the challenge is admitted and the hub key comes wrapped for that TPM; keys must stay usable", async () => {
      await enrollTpm(svc, "tpm-by-hand", ek.tpm2b);
      const challenged = await register("tpm-by-hand");
      assert.equal(challenged.status, 401);
      const key = openBlobInSoftware(
        ek,
        srk,
        Buffer.from((challenged.json() as { authenticationKey: string }).authenticationKey, "base64"),
      );
      const sas = createSasToken(
        key.toString("base64"),
        encodeURIComponent(`${p.info.idScope}/registrations/tpm-by-hand`),
        Math.floor(Date.now() / 1000) + 600,
        "registration",
      );
      // A usable EK but a storage root key that is not a key: refused before any work.
      const badSrk = await call(
        p,
        "PUT",
        `/${p.info.idScope}/registrations/tpm-by-hand/register?api-version=2019-03-31`,
        {
          body: JSON.stringify({
            registrationId: "tpm-by-hand",
            tpm: {
              endorsementKey: ek.tpm2b.toString("base64"),
              storageRootKey: Buffer.from("nope").toString("base64"),
            },
          }),
          auth: sas,
        },
      );
      assert.equal(badSrk.status, 400, badSrk.text);
      assert.match((badSrk.json() as { message: string }).message, /storage root key is not a usable TPM key/);
      const r = await register("tpm-by-hand", undefined, sas);
      assert.equal(r.status, 200, r.text);
      const state = (r.json() as { registrationState: { status: string; tpm: { authenticationKey: string } } })
        .registrationState;
      assert.equal(state.status, "assigned");
      const hubKey = openBlobInSoftware(ek, srk, Buffer.from(state.tpm.authenticationKey, "base64"));
      const identity = (await registryClient(p).get("tpm-by-hand")).responseBody;
      assert.equal(identity.authentication?.symmetricKey?.primaryKey, hubKey.toString("base64"));
    });

    for (const flavour of MQTT_FLAVOURS) {
      test(`${flavour}: a TPM device is told TPM is not offered over MQTT, and gets no challenge`, async () => {
        const device = await connectDps(p, flavour, { registrationId: "tpm-refused-dev" });
        try {
          const a = await device.register(JSON.parse(body("tpm-refused-dev")));
          assert.equal(a.status, 401);
          assert.equal(a.body.errorCode, 401002);
          assert.match(String(a.body.message), /HTTPS and AMQP, not MQTT/);
          assert.equal(a.body.authenticationKey, undefined);
        } finally {
          await device.end();
        }
      });
    }

    test("malformed TPM keys are a 400 with the reason", async () => {
      const r = await register("tpm-refused-dev", Buffer.from("not a key"));
      assert.equal(r.status, 401, "another EK than the enrolled one: no challenge, whatever it holds");
      const bad = await call(
        p,
        "PUT",
        `/${p.info.idScope}/registrations/tpm-refused-dev/register?api-version=2019-03-31`,
        {
          body: JSON.stringify({ registrationId: "tpm-refused-dev", tpm: { endorsementKey: 42 } }),
          auth: null,
        },
      );
      assert.equal(bad.status, 400, bad.text);
      assert.match((bad.json() as { message: string }).message, /'tpm' must hold/);
    });
  });
});
