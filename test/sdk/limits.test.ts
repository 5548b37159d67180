// Limits and profiles (issue 21): each row of the README's limits table, over the real SDKs where
// they can observe it and raw protocol elsewhere. (Registrations per minute: throttling.test.ts;
// message size: refusals and dps-robustness tests; shedding under overload: burst.test.ts.)
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { EnrollmentGroup, IndividualEnrollment } from "azure-iot-provisioning-service/dist/interfaces.js";
import { createRootCa } from "../../src/security/cert-factory.js";
import {
  deriveKey,
  httpTransport,
  mqttTransport,
  type RegistrationResult,
  refusalOf,
  registerWithKey,
} from "../support/device-clients.js";
import { connectDps } from "../support/dps-mqtt.js";
import { deviceToken, enrollGroup, enrollIndividual } from "../support/enrollments.js";
import { call } from "../support/management.js";
import { scrape } from "../support/metrics.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { serviceClient, serviceRefusal } from "../support/service-client.js";

const MGMT = "api-version=2022-02-05";
const SERVICE = "api-version=2021-10-01";

describe("count limits", () => {
  let p: ProvisioProcess;
  before(async () => {
    p = await startProvisio({
      env: {
        PROVISIO_MAX_ENROLLMENTS: "2",
        PROVISIO_MAX_SYMMETRIC_KEY_GROUPS: "1",
        PROVISIO_MAX_X509_GROUPS: "1",
        PROVISIO_MAX_REGISTRATIONS: "2",
        PROVISIO_MAX_CA_CERTIFICATES: "1",
        PROVISIO_MAX_LINKED_HUBS: "1",
        PROVISIO_MAX_IP_FILTER_RULES: "1",
      },
    });
  });
  after(async () => {
    await p.dispose();
  });

  test("individual enrollments: the one over the limit is refused, in a bulk call that item; updates pass", async () => {
    const svc = serviceClient(p);
    await enrollIndividual(svc, "quota-1");
    await enrollIndividual(svc, "quota-2");
    const over = await serviceRefusal(
      svc.createOrUpdateIndividualEnrollment({
        registrationId: "quota-3",
        attestation: { type: "symmetricKey" },
      } as unknown as IndividualEnrollment),
    );
    assert.equal(over.code, 409004);
    assert.match(over.message, /maximum of 2 individual enrollments \(PROVISIO_MAX_ENROLLMENTS\)/);
    assert.equal((await call(p, "GET", `/enrollments/quota-3?${SERVICE}`)).status, 404, "nothing was written");
    // The SDK's promise form never settles here: its callback form is the one that answers.
    const bulk = await new Promise<{ isSuccessful: boolean; errors?: { errorCode: number }[] }>((resolve, reject) =>
      svc.runBulkEnrollmentOperation(
        {
          mode: "create",
          enrollments: [{ registrationId: "quota-4", attestation: { type: "symmetricKey" } }],
        } as never,
        (err, result) => (err ? reject(err) : resolve(result as never)),
      ),
    );
    assert.equal(bulk.isSuccessful, false);
    assert.equal(bulk.errors?.[0]?.errorCode, 409004);
    // An update of one already there is no new enrollment.
    const updated = await enrollIndividual(svc, "quota-1", { initialTwin: { tags: { v: 2 } } });
    assert.ok(updated);
  });

  test("enrollment groups: per attestation type", async () => {
    const svc = serviceClient(p);
    await enrollGroup(svc, "quota-sk-1");
    const over = await serviceRefusal(
      svc.createOrUpdateEnrollmentGroup({
        enrollmentGroupId: "quota-sk-2",
        attestation: { type: "symmetricKey" },
      } as unknown as EnrollmentGroup),
    );
    assert.equal(over.code, 409004);
    assert.match(over.message, /symmetric-key enrollment groups \(PROVISIO_MAX_SYMMETRIC_KEY_GROUPS\)/);
    // The X.509 quota is its own.
    const root = await createRootCa("Quota Root");
    const x509 = (id: string) =>
      svc.createOrUpdateEnrollmentGroup({
        enrollmentGroupId: id,
        attestation: { type: "x509", x509: { signingCertificates: { primary: { certificate: root.certPem } } } },
      } as unknown as EnrollmentGroup);
    await x509("quota-x509-1");
    assert.match((await serviceRefusal(x509("quota-x509-2"))).message, /X\.509 enrollment groups/);
  });

  test("registration records: a new device over the limit is refused and recorded nowhere; known devices register again", async () => {
    const svc = serviceClient(p);
    const groupKey = (await svc.getEnrollmentGroupAttestationMechanism("quota-sk-1")).responseBody.symmetricKey
      ?.primaryKey as string;
    for (const id of ["records-1", "records-2"]) {
      assert.equal((await registerWithKey(p, httpTransport(p), id, deriveKey(groupKey, id))).status, "assigned");
    }
    await assert.rejects(registerWithKey(p, httpTransport(p), "records-3", deriveKey(groupKey, "records-3")), (err) => {
      assert.equal(refusalOf(err).errorCode, 409004);
      assert.match(refusalOf(err).message, /maximum of 2 registration records \(PROVISIO_MAX_REGISTRATIONS\)/);
      return true;
    });
    assert.equal((await call(p, "GET", `/registrations/records-3?${SERVICE}`)).status, 404);
    const again = await registerWithKey(p, httpTransport(p), "records-1", deriveKey(groupKey, "records-1"));
    assert.equal(again.status, "assigned");
  });

  test("CA certificates, linked hubs and IP filter rules hold to their settings", async () => {
    const cert = async (name: string) =>
      call(p, "PUT", `/provisioningServices/provisio/certificates/${name}?${MGMT}`, {
        body: JSON.stringify({ certificate: (await createRootCa(name)).certPem }),
      });
    assert.equal((await cert("first")).status, 201);
    const second = await cert("second");
    assert.equal(second.status, 409);
    assert.match(second.text, /"errorCode":409401.*maximum of 1 CA certificates/);

    const rules = [
      { filterName: "a", action: "Accept", ipMask: "127.0.0.1", target: "all" },
      { filterName: "b", action: "Accept", ipMask: "10.0.0.0/8", target: "all" },
    ];
    const tooMany = await call(p, "PUT", `/provisioningServices/provisio?${MGMT}`, {
      body: JSON.stringify({ properties: { ipFilterRules: rules } }),
    });
    assert.equal(tooMany.status, 400);
    assert.match(tooMany.text, /at most 1 rules \(PROVISIO_MAX_IP_FILTER_RULES\)/);

    const current = (await call(p, "GET", `/provisioningServices/provisio?${MGMT}`)).json() as {
      properties: { iotHubs: { connectionString: string }[] };
    };
    const hubs = [
      ...current.properties.iotHubs,
      {
        connectionString: "HostName=x.example.net;SharedAccessKeyName=o;SharedAccessKey=a2V5a2V5a2V5a2V5a2V5a2V5",
        location: "local",
      },
    ];
    const twoHubs = await call(p, "PUT", `/provisioningServices/provisio?${MGMT}`, {
      body: JSON.stringify({ properties: { iotHubs: hubs } }),
    });
    assert.equal(twoHubs.status, 400);
    assert.match(twoHubs.text, /At most 1 hubs can be linked \(PROVISIO_MAX_LINKED_HUBS\)/);
  });
});

describe("rates: service operations per unit, device polling", () => {
  let p: ProvisioProcess;
  before(async () => {
    p = await startProvisio({
      args: ["--units", "2"],
      env: { PROVISIO_SERVICE_OPERATIONS_PER_MINUTE: "3" },
    });
  });
  after(async () => {
    await p.dispose();
  });

  test("service operations: 3 a minute per unit, 2 units: the 7th is 429 with Retry-After; sku.capacity is 2", async () => {
    const statuses: number[] = [];
    let last = await call(p, "GET", `/enrollments/none?${SERVICE}`);
    statuses.push(last.status);
    for (let i = 0; i < 6; i++) {
      last = await call(p, "GET", `/enrollments/none?${SERVICE}`);
      statuses.push(last.status);
    }
    assert.deepEqual(statuses, [404, 404, 404, 404, 404, 404, 429]);
    assert.match(String(last.headers["retry-after"]), /^[1-9]\d*$/);
    assert.match(last.text, /"errorCode":429001/);
    const resource = (await call(p, "GET", `/provisioningServices/provisio?${MGMT}`)).json() as {
      sku: { capacity: number };
    };
    assert.equal(resource.sku.capacity, 2, "the management API is not a service operation");
  });

  test("device polling: the third lookup within 10 s is 429 with retry-after (raw MQTT)", async () => {
    // Its own server: this one's service operations are spent.
    const q = await startProvisio({ env: { PROVISIO_POLLS_PER_10_SECONDS: "2", PROVISIO_REGISTER_WAIT_MS: "0" } });
    try {
      const key = await enrollIndividual(serviceClient(q), "poller");
      const device = await connectDps(q, "mqtt", { registrationId: "poller", password: deviceToken(q, "poller", key) });
      try {
        const registered = await device.register();
        assert.equal(registered.status, 202);
        const op = String(registered.body.operationId);
        assert.ok([200, 202].includes((await device.poll(op)).status));
        assert.ok([200, 202].includes((await device.poll(op)).status));
        const third = await device.poll(op);
        assert.equal(third.status, 429);
        assert.match(third.query.get("retry-after") ?? "", /^[1-9]\d*$/);
      } finally {
        await device.end();
      }
    } finally {
      await q.dispose();
    }
  });
});

describe("--profile azure", () => {
  let p: ProvisioProcess;
  before(async () => {
    p = await startProvisio({ args: ["--profile", "azure"] });
  });
  after(async () => {
    await p.dispose();
  });

  test("a register is answered 202 assigning with Retry-After 3, as Azure does; the SDKs poll to assigned", async () => {
    const key = await enrollIndividual(serviceClient(p), "azure-like");
    const r = await call(p, "PUT", `/${p.info.idScope}/registrations/azure-like/register?api-version=2019-03-31`, {
      body: JSON.stringify({ registrationId: "azure-like" }),
      auth: deviceToken(p, "azure-like", key),
    });
    assert.equal(r.status, 202);
    assert.equal(r.headers["retry-after"], "3");
    assert.equal((r.json() as { status: string }).status, "assigning");

    const started = Date.now();
    const viaHttp = await registerWithKey(p, httpTransport(p), "azure-like", key);
    assert.equal(viaHttp.status, "assigned");
    assert.ok(Date.now() - started >= 2_500, "the device waited for its poll");
    const mqtt = mqttTransport(p);
    const viaMqtt = await registerWithKey(p, mqtt.transport, "azure-like", key, undefined, mqtt.host);
    assert.equal(viaMqtt.status, "assigned");
  });

  test("DPS's counts are in force: 100 symmetric-key groups", async () => {
    const resource = await call(p, "GET", `/provisioningServices/provisio?${MGMT}`);
    assert.equal(resource.status, 200);
    const svc = serviceClient(p);
    await Promise.all(Array.from({ length: 100 }, (_, i) => enrollGroup(svc, `azure-group-${i}`)));
    const over = await serviceRefusal(
      svc.createOrUpdateEnrollmentGroup({
        enrollmentGroupId: "azure-group-100",
        attestation: { type: "symmetricKey" },
      } as unknown as EnrollmentGroup),
    );
    assert.equal(over.code, 409004);
  });
});

describe("faults for rehearsals", () => {
  let p: ProvisioProcess;
  let labKey: string;
  before(async () => {
    p = await startProvisio({
      args: [
        ...["--fault", "429 50% group=lab"],
        ...["--fault", "500 100% group=broken"],
        ...["--fault", "delay=2s 100% group=slow"],
      ],
    });
    const svc = serviceClient(p);
    labKey = await enrollGroup(svc, "lab");
    await enrollGroup(svc, "broken");
    await enrollGroup(svc, "slow");
  });
  after(async () => {
    await p.dispose();
  });

  const register = (group: string, key: string, id: string) =>
    call(p, "PUT", `/${p.info.idScope}/registrations/${id}/register?api-version=2019-03-31`, {
      body: JSON.stringify({ registrationId: id }),
      auth: deviceToken(p, id, deriveKey(key, id)),
    }).then((r) => ({ group, ...r }));

  test("429 50%: every second register of the group, with Retry-After 3, logged as injected and counted", async () => {
    const statuses: number[] = [];
    for (let i = 1; i <= 4; i++) {
      const r = await register("lab", labKey, `lab-device-${i}`);
      statuses.push(r.status);
      if (r.status === 429) {
        assert.equal(r.headers["retry-after"], "3");
        assert.match(r.text, /"errorCode":429001.*a fault injected for a rehearsal: '429 50% group=lab'/);
      }
    }
    assert.deepEqual(statuses, [200, 429, 200, 429]);
    const { series } = await scrape(p);
    assert.equal(
      series.get('provisio_injected_faults_total{provisioning_service_name="provisio",fault="429 50% group=lab"}'),
      2,
    );
    assert.equal(
      series.get('provisio_throttled_requests_total{provisioning_service_name="provisio",protocol="http"}') ?? 0,
      0,
      "an injected 429 is not counted as throttling",
    );
    // The MQTT transport waits Retry-After and registers again: a device gets through.
    const mqtt = mqttTransport(p);
    const result: RegistrationResult = await registerWithKey(
      p,
      mqtt.transport,
      "lab-device-5",
      deriveKey(labKey, "lab-device-5"),
      undefined,
      mqtt.host,
    );
    assert.equal(result.status, "assigned");
  });

  test("500 100%: the register fails with 500004; the attempt says why", async () => {
    const key = (await serviceClient(p).getEnrollmentGroupAttestationMechanism("broken")).responseBody.symmetricKey
      ?.primaryKey as string;
    const r = await register("broken", key, "broken-1");
    assert.equal(r.status, 500);
    assert.match(r.text, /"errorCode":500004.*'500 100% group=broken'/);
    const attempts = (await call(p, "GET", `/registrations/broken-1/attempts?${SERVICE}`)).json() as {
      steps: { step: string; outcome: string }[];
    }[];
    assert.equal(attempts[0]?.steps.at(-1)?.step, "injectFault");
    assert.equal(attempts[0]?.steps.at(-1)?.outcome, "failed");
  });

  test("delay=2s: the device is told assigning and polls; the registration ends assigned", async () => {
    const key = (await serviceClient(p).getEnrollmentGroupAttestationMechanism("slow")).responseBody.symmetricKey
      ?.primaryKey as string;
    const r = await register("slow", key, "slow-1");
    assert.equal(r.status, 202);
    const started = Date.now();
    const result = await registerWithKey(p, httpTransport(p), "slow-2", deriveKey(key, "slow-2"));
    assert.equal(result.status, "assigned");
    assert.ok(Date.now() - started >= 1_900);
  });
});
