// X.509 attestation end to end with the real SDK (azure-iot-security-x509) over every device transport
// (behaviors.md §2.2, §3): individual self-signed devices, groups on an intermediate under a
// verified root, refusals, blocking entries, then the device on its hub with its certificate.
import assert from "node:assert/strict";
import { Agent, request } from "node:https";
import { after, before, describe, test } from "node:test";
import type { TLSSocket } from "node:tls";
import deviceSdk from "azure-iot-device";
import deviceMqtt from "azure-iot-device-mqtt";
import provisioningDevice from "azure-iot-provisioning-device";
import type { ProvisioningServiceClient } from "azure-iot-provisioning-service";
import type { EnrollmentGroup, IndividualEnrollment } from "azure-iot-provisioning-service/dist/interfaces.js";
import x509Security from "azure-iot-security-x509";
import type { RegistrationAttempt } from "../../src/domain/attempt.js";
import {
  createDeviceCertificate,
  createIntermediateCa,
  createRootCa,
  createSelfSignedDevice,
  type IssuedCertificate,
} from "../../src/security/cert-factory.js";
import {
  DEVICE_TRANSPORTS,
  httpTransport,
  type RegistrationResult,
  refusalName,
  refusalOf,
} from "../support/device-clients.js";
import { hubOf, registryClient, x509DeviceClient } from "../support/hub-clients.js";
import { call } from "../support/management.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { serviceClient } from "../support/service-client.js";
import { until } from "../support/until.js";

const { Message } = deviceSdk;
const { Mqtt } = deviceMqtt;
const { ProvisioningDeviceClient } = provisioningDevice;
const { X509Security } = x509Security;

/** A registration id can carry a transport's name: "MQTT over WebSockets" → "mqtt-over-websockets". */
const slug = (name: string): string => name.toLowerCase().replaceAll(" ", "-");

const TRANSPORTS = DEVICE_TRANSPORTS;
/** Register and polls on one connection, as with Node's global agent (device-api.md §5). */
const HTTPS_KEEP_ALIVE = {
  name: "HTTPS keep-alive",
  make: (p: ProvisioProcess) => ({ transport: httpTransport(p, { keepAlive: true }), host: "localhost" }),
};

/** Register with the real SDK and a certificate; `chain` is the PEM the device presents (leaf first). */
async function registerWithCertificate(
  p: ProvisioProcess,
  transportName: string,
  registrationId: string,
  chain: string,
  key: string,
): Promise<RegistrationResult> {
  const t = [...TRANSPORTS, HTTPS_KEEP_ALIVE].find((x) => x.name === transportName);
  assert.ok(t);
  const { transport, host } = t.make(p);
  type Create = typeof ProvisioningDeviceClient.create;
  const security = new X509Security(registrationId, { cert: chain, key }) as unknown as Parameters<Create>[3];
  const client = ProvisioningDeviceClient.create(host, p.info.idScope, transport as Parameters<Create>[2], security);
  return (await client.register()) as unknown as RegistrationResult;
}

/** A verified root and an X.509 group on an intermediate under it; resolves to the intermediate. */
async function setUpGroupOnIntermediate(p: ProvisioProcess, svc: ProvisioningServiceClient) {
  const root = await createRootCa("Provisio Test Root");
  const intermediate = await createIntermediateCa(root, "Provisio Test Intermediate");
  const upload = await call(p, "PUT", "/provisioningServices/provisio/certificates/test-root", {
    body: JSON.stringify({ certificate: root.certPem, isVerified: true }),
  });
  assert.equal(upload.status, 201, upload.text);
  await svc.createOrUpdateEnrollmentGroup({
    enrollmentGroupId: "x509-group",
    attestation: { type: "x509", x509: { signingCertificates: { primary: { certificate: intermediate.certPem } } } },
    initialTwin: { tags: { kind: "x509" } },
  } as unknown as EnrollmentGroup);
  return intermediate;
}

describe("X.509 attestation with the real device SDK", () => {
  let p: ProvisioProcess;
  let svc: ProvisioningServiceClient;
  let intermediate: IssuedCertificate;

  const registerX509 = (transportName: string, registrationId: string, chain: string, key: string) =>
    registerWithCertificate(p, transportName, registrationId, chain, key);

  const leafOf = async (registrationId: string) => {
    const leaf = await createDeviceCertificate(intermediate, registrationId);
    return { leaf, chain: leaf.certPem + intermediate.certPem };
  };

  before(async () => {
    p = await startProvisio();
    svc = serviceClient(p);
    intermediate = await setUpGroupOnIntermediate(p, svc);
  });
  after(async () => {
    await p.dispose();
  });

  for (const t of TRANSPORTS) {
    test(`${t.name}: an individual self-signed device is assigned; the hub identity holds its thumbprint`, async () => {
      const id = `x509-ind-${slug(t.name)}`;
      const cert = await createSelfSignedDevice(id);
      await svc.createOrUpdateIndividualEnrollment({
        registrationId: id,
        attestation: { type: "x509", x509: { clientCertificates: { primary: { certificate: cert.certPem } } } },
      } as unknown as IndividualEnrollment);
      const result = await registerX509(t.name, id, cert.certPem, cert.keyPem);
      assert.equal(result.status, "assigned");
      assert.equal(result.deviceId, id);
      const identity = (await registryClient(p).get(id)).responseBody;
      assert.equal((identity.authentication as { type?: string } | undefined)?.type, "selfSigned");
      assert.equal(identity.authentication?.x509Thumbprint?.primaryThumbprint, cert.sha1);
    });

    test(`${t.name}: a group device under a verified root, sending leaf + intermediate, is assigned and connects with its certificate`, async () => {
      const id = `x509-grp-${slug(t.name)}`;
      const { leaf, chain } = await leafOf(id);
      const result = await registerX509(t.name, id, chain, leaf.keyPem);
      assert.equal(result.status, "assigned");
      assert.deepEqual((result as unknown as { x509: unknown }).x509, { enrollmentGroupId: "x509-group" });
      assert.deepEqual((await registryClient(p).getTwin(id)).responseBody.tags, { kind: "x509" });

      // The device now authenticates to its hub with the same certificate (iothub-api.md §10.3).
      const device = x509DeviceClient(
        {
          host: result.assignedHub,
          deviceId: result.deviceId,
          gatewayHostName: `127.0.0.1:${p.info.ports.mqtt}`,
          cert: chain,
          key: leaf.keyPem,
        },
        Mqtt,
      );
      await device.setOptions({ ca: p.ca.toString() });
      await device.open();
      await device.sendEvent(new Message("from an X.509 device"));
      await device.close();
      const kept = await call(p, "GET", `/_provisio/messages?deviceId=${id}`, {
        connectionString: hubOf(p).connectionString,
      });
      assert.deepEqual(
        (kept.json() as { payload: unknown }[]).map((m) => m.payload),
        ["from an X.509 device"],
      );
    });

    test(`${t.name}: a device that sends only its leaf is refused`, async () => {
      const id = `x509-leafonly-${slug(t.name)}`;
      const { leaf } = await leafOf(id);
      // Every transport tells the device why (issue 15.7): MQTT answers res/401 after CONNECT.
      await assert.rejects(registerX509(t.name, id, leaf.certPem, leaf.keyPem), (err: Error) => {
        assert.equal(refusalName(err), "UnauthorizedError");
        const refusal = refusalOf(err);
        assert.equal(refusal.errorCode, 401002);
        assert.match(refusal.message, /only the leaf certificate was sent/);
        return true;
      });
      // The refusal is explained where an operator can read it (issue 22).
      const attempts = async () =>
        (await call(p, "GET", `/registrations/${id}/attempts?api-version=2021-10-01`)).json() as RegistrationAttempt[];
      await until(async () => Array.isArray(await attempts()), 5_000, "the refused attempt kept");
      const [attempt] = await attempts();
      assert.equal(attempt?.outcome, "refused");
      assert.equal(attempt?.errorCode, 401002);
      const attest = attempt?.steps.find((s) => s.step === "attestDevice");
      assert.equal(attest?.outcome, "failed");
      assert.match(attest?.detail ?? "", /leaf/);
    });
  }

  test("a group device's whole chain counts on every request: keep-alive, new connections, no resumption", async () => {
    // Node 20's getPeerX509Certificate hands the intermediates out once per connection (why
    // security/tls-peer.ts copies the chain instead), and a resumed TLS session carries only the
    // leaf (security/listener-tls.ts): either would read as "only the leaf sent". Every listener's refusal to resume: test/security/listener-tls.test.ts.
    const { leaf, chain } = await leafOf("x509-reconnect");
    const tlsOptions = { ca: p.ca, cert: chain, key: leaf.keyPem, servername: "localhost" };
    const register = (agent: Agent) =>
      new Promise<{ status: number; reusedSocket: boolean; resumed: boolean; body: string }>((resolve, reject) => {
        const req = request(
          {
            host: "127.0.0.1",
            port: p.info.ports.https,
            method: "PUT",
            path: `/${p.info.idScope}/registrations/x509-reconnect/register?api-version=2021-06-01`,
            headers: { "Content-Type": "application/json", Host: "localhost" },
            agent,
          },
          (res) => {
            const resumed = (res.socket as TLSSocket).isSessionReused(); // the socket leaves res at its end
            let body = "";
            res.setEncoding("utf8");
            res.on("data", (chunk: string) => {
              body += chunk;
            });
            res.on("end", () =>
              resolve({
                status: res.statusCode ?? 0,
                reusedSocket: req.reusedSocket,
                resumed,
                body,
              }),
            );
          },
        );
        req.on("error", reject);
        req.end(JSON.stringify({ registrationId: "x509-reconnect" }));
      });
    const assigned = (r: { status: number; body: string }) => {
      assert.equal(r.status, 200, r.body);
      assert.equal((JSON.parse(r.body) as { status: string }).status, "assigned");
    };

    // Two requests on one keep-alive connection (Node's global agent keeps connections alive).
    const keepAlive = new Agent({ ...tlsOptions, keepAlive: true, maxSockets: 1 });
    const first = await register(keepAlive);
    const second = await register(keepAlive);
    keepAlive.destroy();
    assigned(first);
    assigned(second);
    assert.equal(second.reusedSocket, true);

    // New connections from a client that caches TLS sessions: never resumed, so the chain comes again.
    const caching = new Agent({ ...tlsOptions, maxCachedSessions: 10 });
    for (let i = 0; i < 2; i++) {
      const r = await register(caching);
      assigned(r);
      assert.equal(r.resumed, false);
    }
    caching.destroy();
  });

  for (const t of TRANSPORTS) {
    const suffix = slug(t.name);

    test(`${t.name}: an expired leaf is refused`, async () => {
      const id = `x509-expired-${suffix}`;
      const leaf = await createDeviceCertificate(intermediate, id, {
        notBefore: new Date(Date.now() - 10 * 86_400_000),
        notAfter: new Date(Date.now() - 86_400_000),
      });
      await assert.rejects(registerX509(t.name, id, leaf.certPem + intermediate.certPem, leaf.keyPem), (err: Error) => {
        const refusal = refusalOf(err);
        assert.equal(refusal.errorCode, 401002);
        assert.match(refusal.message, /expired/);
        return true;
      });
    });

    test(`${t.name}: a disabled individual entry blocks one device of an enabled group`, async () => {
      const blocked = `x509-blocked-${suffix}`;
      const { leaf, chain } = await leafOf(blocked);
      await svc.createOrUpdateIndividualEnrollment({
        registrationId: blocked,
        attestation: { type: "symmetricKey" },
        provisioningStatus: "disabled",
      } as IndividualEnrollment);
      await assert.rejects(registerX509(t.name, blocked, chain, leaf.keyPem), /status is disabled/);
      const sibling = `x509-sibling-${suffix}`;
      const { leaf: other, chain: otherChain } = await leafOf(sibling);
      assert.equal((await registerX509(t.name, sibling, otherChain, other.keyPem)).status, "assigned");
    });

    test(`${t.name}: a disabled group on the intermediate blocks its devices`, async () => {
      const group = (await svc.getEnrollmentGroup("x509-group")).responseBody;
      await svc.createOrUpdateEnrollmentGroup({ ...group, provisioningStatus: "disabled" });
      try {
        const id = `x509-while-disabled-${suffix}`;
        const { leaf, chain } = await leafOf(id);
        await assert.rejects(registerX509(t.name, id, chain, leaf.keyPem), /status is disabled/);
      } finally {
        const again = (await svc.getEnrollmentGroup("x509-group")).responseBody;
        await svc.createOrUpdateEnrollmentGroup({ ...again, provisioningStatus: "enabled" });
      }
    });
  }
});

describe("X.509 group devices when the answer takes longer than the register call waits", () => {
  let p: ProvisioProcess;
  let intermediate: IssuedCertificate;
  before(async () => {
    // Every register answers "assigning" at once: the SDK polls (over HTTPS on fresh connections or
    // on one keep-alive connection, over MQTT in its session), and each poll attests the chain again.
    p = await startProvisio({ env: { PROVISIO_REGISTER_WAIT_MS: "0" } });
    intermediate = await setUpGroupOnIntermediate(p, serviceClient(p));
  });
  after(async () => {
    await p.dispose();
  });

  for (const t of [...TRANSPORTS, HTTPS_KEEP_ALIVE]) {
    test(`${t.name}: the device polls its operation and ends assigned`, async () => {
      const id = `x509-polled-${slug(t.name)}`;
      const leaf = await createDeviceCertificate(intermediate, id);
      const result = await registerWithCertificate(p, t.name, id, leaf.certPem + intermediate.certPem, leaf.keyPem);
      assert.equal(result.status, "assigned");
    });
  }
});
