// IP filter rules and public network access, enforced (issue "Network access, TLS and identity";
// management.md §4, behaviors.md §10.2-10.3): real sockets from distinct loopback addresses, on
// HTTPS (device and service APIs), MQTT and AMQP; a refused client hears 401 without the filter
// being named; rules apply to new connections as soon as they are written.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { httpTransport, registerWithKey } from "../support/device-clients.js";
import { connectDpsAmqp } from "../support/dps-amqp.js";
import { connectDps } from "../support/dps-mqtt.js";
import { deviceToken, enrollIndividual } from "../support/enrollments.js";
import { call } from "../support/management.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { serviceClient } from "../support/service-client.js";

const setNetwork = async (p: ProvisioProcess, properties: Record<string, unknown>) => {
  const r = await call(p, "PUT", "/provisioningServices/provisio", { body: JSON.stringify({ properties }) });
  assert.equal(r.status, 200, r.text);
  return r.json() as { properties: Record<string, unknown> };
};

describe("IP filter rules", () => {
  let p: ProvisioProcess;
  let key: string;
  before(async () => {
    p = await startProvisio();
    key = await enrollIndividual(serviceClient(p), "filtered-dev");
  });
  after(async () => {
    await p.dispose();
  });

  const registerFrom = (localAddress: string) =>
    call(p, "PUT", `/${p.info.idScope}/registrations/filtered-dev/register?api-version=2019-03-31`, {
      body: JSON.stringify({ registrationId: "filtered-dev" }),
      auth: deviceToken(p, "filtered-dev", key),
      localAddress,
    });
  const serviceFrom = (localAddress: string) =>
    call(p, "GET", "/enrollments/filtered-dev?api-version=2021-10-01", { localAddress });

  test("stored, returned and validated with clear 400s", async () => {
    const rules = [
      { filterName: "lab", action: "Reject", ipMask: "127.0.0.7", target: "all" },
      { FilterName: "ops", Action: "accept", IpMask: "127.0.0.0/8" },
    ];
    const got = await setNetwork(p, { ipFilterRules: rules });
    assert.deepEqual(got.properties.ipFilterRules, [
      { filterName: "lab", action: "Reject", ipMask: "127.0.0.7", target: "all" },
      { filterName: "ops", action: "Accept", ipMask: "127.0.0.0/8", target: "all" },
    ]);
    const invalid: [unknown, RegExp][] = [
      [[{ filterName: "a", action: "Reject", ipMask: "300.0.0.1" }], /ipMask must be an IPv4 address/],
      [[{ filterName: "a", action: "Reject", ipMask: "::1" }], /ipMask must be an IPv4/],
      [[{ filterName: "a", action: "Drop", ipMask: "1.2.3.4" }], /action must be Accept or Reject/],
      [
        [
          { filterName: "Same", action: "Reject", ipMask: "1.2.3.4" },
          { filterName: "same", action: "Reject", ipMask: "1.2.3.5" },
        ],
        /used twice/,
      ],
      [[{ filterName: "a", action: "Reject", ipMask: "1.2.3.4", target: "hubs" }], /target must be all/],
      [
        Array.from({ length: 101 }, (_, i) => ({ filterName: `r${i}`, action: "Accept", ipMask: "1.2.3.4" })),
        /at most 100/,
      ],
    ];
    for (const [ipFilterRules, message] of invalid) {
      const r = await call(p, "PUT", "/provisioningServices/provisio", {
        body: JSON.stringify({ properties: { ipFilterRules } }),
      });
      assert.equal(r.status, 400, r.text);
      assert.match(r.text, message);
    }
  });

  test("first match wins on every protocol; a refused device hears 401 without the filter named", async () => {
    await setNetwork(p, {
      ipFilterRules: [
        { filterName: "allow-9", action: "Accept", ipMask: "127.0.0.9" },
        { filterName: "block-lab", action: "Reject", ipMask: "127.0.0.8/29" },
      ],
    });
    // 127.0.0.9 matches the Accept first; 127.0.0.10 the Reject; 127.0.0.20 nothing (accepted).
    assert.equal((await registerFrom("127.0.0.9")).status, 200);
    assert.equal((await registerFrom("127.0.0.20")).status, 200);
    const refused = await registerFrom("127.0.0.10");
    assert.equal(refused.status, 401);
    assert.equal((refused.json() as { errorCode: number }).errorCode, 401002);
    assert.doesNotMatch(refused.text, /filter|rule|block-lab|ip/i);
    await assert.rejects(
      registerWithKey(p, httpTransport(p, { localAddress: "127.0.0.10" }), "filtered-dev", key),
      /401/,
    );
    const mqtt = await connectDps(p, "mqtt", {
      registrationId: "filtered-dev",
      password: deviceToken(p, "filtered-dev", key),
      localAddress: "127.0.0.10",
    });
    try {
      assert.notEqual(mqtt.returnCode, 0, "MQTT CONNECT refused");
    } finally {
      await mqtt.end();
    }
    const amqp = await connectDpsAmqp(p, "amqp", {
      registrationId: "filtered-dev",
      password: deviceToken(p, "filtered-dev", key),
      localAddress: "127.0.0.10",
    });
    assert.equal(amqp.ok, false, "AMQP SASL refused");
    const allowedMqtt = await connectDps(p, "mqtt", {
      registrationId: "filtered-dev",
      password: deviceToken(p, "filtered-dev", key),
      localAddress: "127.0.0.9",
    });
    try {
      assert.equal(allowedMqtt.returnCode, 0);
    } finally {
      await allowedMqtt.end();
    }
  });

  test("open MQTT and AMQP sessions from an address a new rule rejects are closed within a second", async () => {
    await setNetwork(p, { ipFilterRules: [] });
    const mqtt = await connectDps(p, "mqtt", {
      registrationId: "filtered-dev",
      password: deviceToken(p, "filtered-dev", key),
      localAddress: "127.0.0.16",
    });
    assert.equal(mqtt.returnCode, 0);
    const amqp = await connectDpsAmqp(p, "amqp", {
      registrationId: "filtered-dev",
      password: deviceToken(p, "filtered-dev", key),
      localAddress: "127.0.0.16",
    });
    assert.ok(amqp.ok, "AMQP links attached");
    const bystander = await connectDps(p, "mqtt", {
      registrationId: "filtered-dev",
      password: deviceToken(p, "filtered-dev", key),
      localAddress: "127.0.0.17",
    });
    try {
      const started = Date.now();
      await setNetwork(p, { ipFilterRules: [{ filterName: "late", action: "Reject", ipMask: "127.0.0.16" }] });
      const within = (closed: Promise<void>) =>
        Promise.race([closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 1_000))]);
      assert.ok(await within(mqtt.closed), "the MQTT session was closed");
      assert.ok(await within(amqp.device.closed), "the AMQP connection was closed");
      assert.ok(Date.now() - started < 2_000);
      assert.equal(await within(bystander.closed), false, "another address keeps its session");
    } finally {
      await Promise.all([mqtt.end(), amqp.device.end(), bystander.end()]);
      await setNetwork(p, { ipFilterRules: [] });
    }
  });

  test("target narrows a rule to the service API or the device API", async () => {
    await setNetwork(p, {
      ipFilterRules: [{ filterName: "no-service", action: "Reject", ipMask: "127.0.0.11", target: "serviceApi" }],
    });
    const svc = await serviceFrom("127.0.0.11");
    assert.equal(svc.status, 401);
    assert.doesNotMatch(svc.text, /filter|rule/i);
    assert.equal((await registerFrom("127.0.0.11")).status, 200, "the device API is not covered");
    assert.equal((await serviceFrom("127.0.0.12")).status, 200);
  });

  test("public network access Disabled admits private networks only and ignores the rules", async () => {
    const got = await setNetwork(p, {
      publicNetworkAccess: "Disabled",
      ipFilterRules: [{ filterName: "ignored", action: "Reject", ipMask: "127.0.0.0/8" }],
    });
    assert.equal(got.properties.publicNetworkAccess, "Disabled");
    // Loopback is private by default (PROVISIO_PRIVATE_NETWORKS): everyone here gets in.
    assert.equal((await registerFrom("127.0.0.13")).status, 200);
    await setNetwork(p, { publicNetworkAccess: "Enabled", ipFilterRules: [] });
  });
});

describe("public network access Disabled with a narrower private network", () => {
  let p: ProvisioProcess;
  before(async () => {
    p = await startProvisio({ env: { PROVISIO_PRIVATE_NETWORKS: "127.0.0.0/30" } });
  });
  after(async () => {
    await p.dispose();
  });

  test("a client outside the private networks is refused on the device and service APIs", async () => {
    const key = await enrollIndividual(serviceClient(p), "private-dev");
    await setNetwork(p, { publicNetworkAccess: "Disabled" });
    const register = (localAddress: string) =>
      call(p, "PUT", `/${p.info.idScope}/registrations/private-dev/register?api-version=2019-03-31`, {
        body: JSON.stringify({ registrationId: "private-dev" }),
        auth: deviceToken(p, "private-dev", key),
        localAddress,
      });
    assert.equal((await register("127.0.0.2")).status, 200);
    assert.equal((await register("127.0.0.14")).status, 401);
    assert.equal(
      (await call(p, "GET", "/enrollments/private-dev?api-version=2021-10-01", { localAddress: "127.0.0.14" })).status,
      401,
    );
  });
});
