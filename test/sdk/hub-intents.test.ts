// A registration's hub step killed at each point (issue "Reliability under faults" 2), against the
// built-in hubs reached over their REST API like any other hub: after the restart, settling
// leaves no identity without its record and none on two hubs, and the device registers again.
// The same against a stand-in external hub: another `provisio serve` whose built-in hub is linked
// like any IoT hub and reached over the network (PROVISIO_HUB_ADDRESSES).
import assert from "node:assert/strict";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import https from "node:https";
import type net from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import type { IndividualEnrollment } from "azure-iot-provisioning-service/dist/interfaces.js";
import { httpTransport, registerWithKey } from "../support/device-clients.js";
import { deviceToken, enrollIndividual } from "../support/enrollments.js";
import { hubOf, registryClient } from "../support/hub-clients.js";
import { call } from "../support/management.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { serviceClient } from "../support/service-client.js";
import { until } from "../support/until.js";

const env = { PROVISIO_BUILTIN_HUB_CLIENT: "rest", PROVISIO_OPERATION_LEASE_MS: "1500" };
const args = ["--hubs", "2"];

const exists = async (p: ProvisioProcess, hub: number, deviceId: string): Promise<boolean> =>
  registryClient(p, hubOf(p, hub).connectionString)
    .get(deviceId)
    .then(
      () => true,
      (err: Error) => {
        if (err.name === "DeviceNotFoundError") return false;
        throw err;
      },
    );

/** Register over HTTPS on a server that kills itself in the hub step: the call never gets an answer. */
async function registerIntoCrash(p: ProvisioProcess, registrationId: string, key: string): Promise<void> {
  const exited = once(p.child, "exit");
  await assert.rejects(
    call(p, "PUT", `/${p.info.idScope}/registrations/${registrationId}/register?api-version=2019-03-31`, {
      body: JSON.stringify({ registrationId }),
      auth: deviceToken(p, registrationId, key),
    }),
  );
  await exited;
}

async function enrollOn(p: ProvisioProcess, registrationId: string, hub: number): Promise<string> {
  const svc = serviceClient(p);
  const existing = await svc.getIndividualEnrollment(registrationId).then(
    (r) => r.responseBody,
    () => undefined,
  );
  const body = {
    ...(existing ?? { registrationId, attestation: { type: "symmetricKey" } }),
    allocationPolicy: "static",
    iotHubs: [hubOf(p, hub).hostName],
  } as unknown as IndividualEnrollment;
  return (await svc.createOrUpdateIndividualEnrollment(body)).responseBody.attestation.symmetricKey?.primaryKey ?? "";
}

test("killed after the hub write, before the record: the identity is removed, then the device registers", async () => {
  let p = await startProvisio({ args, env: { ...env, PROVISIO_TEST_CRASH_AT: "afterHubWrite" } });
  try {
    const key = await enrollOn(p, "crash-first", 0);
    await registerIntoCrash(p, "crash-first", key);
    p = await startProvisio({ dataDir: p.dataDir, args, env });
    const q = p;
    await until(async () => !(await exists(q, 0, "crash-first")), 10_000, "the orphan identity is removed");
    await assert.rejects(serviceClient(q).getDeviceRegistrationState("crash-first"), /404|not found/i);
    const r = await registerWithKey(q, httpTransport(q), "crash-first", key);
    assert.equal(r.status, "assigned");
    assert.equal(await exists(q, 0, "crash-first"), true);
  } finally {
    await p.dispose();
  }
});

test("killed in a migration after the record, before the old identity went: the old hub loses it", async () => {
  let p = await startProvisio({ args, env });
  try {
    const key = await enrollOn(p, "crash-move", 0);
    assert.equal((await registerWithKey(p, httpTransport(p), "crash-move", key)).assignedHub, hubOf(p, 0).hostName);
    await enrollOn(p, "crash-move", 1);
    await p.stop();
    p = await startProvisio({ dataDir: p.dataDir, args, env: { ...env, PROVISIO_TEST_CRASH_AT: "afterCommit" } });
    await registerIntoCrash(p, "crash-move", key);
    p = await startProvisio({ dataDir: p.dataDir, args, env });
    const q = p;
    const state = (await serviceClient(q).getDeviceRegistrationState("crash-move")).responseBody;
    assert.equal(state.assignedHub, hubOf(q, 1).hostName, "the record was committed");
    await until(async () => !(await exists(q, 0, "crash-move")), 10_000, "the old identity is removed");
    assert.equal(await exists(q, 1, "crash-move"), true, "the new identity stays");
  } finally {
    await p.dispose();
  }
});

test("killed in a migration after the new identity, before the record: the new one goes, the old one stays", async () => {
  let p = await startProvisio({ args, env });
  try {
    const key = await enrollOn(p, "crash-half", 0);
    assert.equal((await registerWithKey(p, httpTransport(p), "crash-half", key)).status, "assigned");
    await enrollOn(p, "crash-half", 1);
    await p.stop();
    p = await startProvisio({ dataDir: p.dataDir, args, env: { ...env, PROVISIO_TEST_CRASH_AT: "afterHubWrite" } });
    await registerIntoCrash(p, "crash-half", key);
    p = await startProvisio({ dataDir: p.dataDir, args, env });
    const q = p;
    await until(async () => !(await exists(q, 1, "crash-half")), 10_000, "the new identity is removed");
    assert.equal(await exists(q, 0, "crash-half"), true, "the record still points at the old hub, which keeps it");
    const state = (await serviceClient(q).getDeviceRegistrationState("crash-half")).responseBody;
    assert.equal(state.assignedHub, hubOf(q, 0).hostName);
  } finally {
    await p.dispose();
  }
});

test("killed after the write to an external hub, before the record: the identity there is removed", async () => {
  const ext = await startProvisio({ args: ["--host", "external.localhost"] });
  const extHub = hubOf(ext);
  const reach = {
    PROVISIO_HUB_ADDRESSES: `${extHub.hostName}=127.0.0.1:${ext.info.ports.https}`,
    NODE_EXTRA_CA_CERTS: ext.info.caFile,
  };
  let p = await startProvisio({ env: { ...env, ...reach } });
  try {
    const linked = await call(p, "PUT", "/provisioningServices/provisio", {
      body: JSON.stringify({
        properties: { iotHubs: [{ connectionString: extHub.connectionString, location: "local" }] },
      }),
    });
    assert.equal(linked.status, 200, linked.text);
    const key = await enrollIndividual(serviceClient(p), "crash-external");
    await p.stop();
    p = await startProvisio({ dataDir: p.dataDir, env: { ...env, ...reach, PROVISIO_TEST_CRASH_AT: "afterHubWrite" } });
    await registerIntoCrash(p, "crash-external", key);
    // The server is down: the external hub holds an identity no record points at.
    assert.equal(await exists(ext, 0, "crash-external"), true, "the hub write happened before the crash");
    p = await startProvisio({ dataDir: p.dataDir, env: { ...env, ...reach } });
    await until(async () => !(await exists(ext, 0, "crash-external")), 10_000, "the orphan identity is removed");
    const q = p;
    assert.equal((await registerWithKey(q, httpTransport(q), "crash-external", key)).assignedHub, extHub.hostName);
    assert.equal(await exists(ext, 0, "crash-external"), true);
  } finally {
    await p.dispose();
    await ext.dispose();
  }
});

test("an external hub that answers after the timeout: the device is told failed, and the identity it kept is removed", async () => {
  // A stand-in external hub: the identity registry of IoT Hub's REST API, enough for DPS's calls,
  // which while `slow` acts on a PUT but answers it past the hub client's 10 s timeout. It serves
  // a certificate for its name from another serve's TLS material.
  const ext = await startProvisio({ args: ["--host", "external.localhost"] });
  const hostName = hubOf(ext).hostName;
  const devices = new Map<string, unknown>();
  let slow = false;
  const hub = https.createServer(
    {
      cert: readFileSync(join(ext.dataDir, "tls", "server.pem")),
      key: readFileSync(join(ext.dataDir, "tls", "server.key")),
    },
    (req, res) => {
      const id = decodeURIComponent(/^\/devices\/([^?]+)/.exec(req.url ?? "")?.[1] ?? "");
      const reply = (status: number, body?: unknown) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(body === undefined ? "" : JSON.stringify(body));
      };
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        if (req.method === "PUT") {
          const device = { ...JSON.parse(Buffer.concat(chunks).toString() || "{}"), deviceId: id, etag: "AAAA" };
          devices.set(id, device);
          if (slow) setTimeout(() => reply(200, device), 12_000).unref();
          else reply(200, device);
        } else if (req.method === "DELETE") {
          if (devices.delete(id)) reply(204);
          else reply(404, { Message: `ErrorCode:DeviceNotFound;Device ${id} not found` });
        } else reply(404, { Message: "ErrorCode:NotFound;no such operation" });
      });
    },
  );
  hub.listen(0, "127.0.0.1");
  await once(hub, "listening");
  const reach = {
    PROVISIO_HUB_ADDRESSES: `${hostName}=127.0.0.1:${(hub.address() as net.AddressInfo).port}`,
    NODE_EXTRA_CA_CERTS: ext.info.caFile,
  };
  const p = await startProvisio({ env: { ...env, ...reach } });
  try {
    const connectionString = `HostName=${hostName};SharedAccessKeyName=iothubowner;SharedAccessKey=${Buffer.alloc(32, 7).toString("base64")}`;
    const linked = await call(p, "PUT", "/provisioningServices/provisio", {
      body: JSON.stringify({ properties: { iotHubs: [{ connectionString, location: "local" }] } }),
    });
    assert.equal(linked.status, 200, linked.text);
    const key = await enrollIndividual(serviceClient(p), "late-hub");
    slow = true;
    const auth = deviceToken(p, "late-hub", key);
    const started = await call(p, "PUT", `/${p.info.idScope}/registrations/late-hub/register?api-version=2019-03-31`, {
      body: JSON.stringify({ registrationId: "late-hub" }),
      auth,
    });
    let op = started.json() as { operationId: string; status: string };
    while (op.status === "assigning") {
      await new Promise((resolve) => setTimeout(resolve, 500));
      const path = `/${p.info.idScope}/registrations/late-hub/operations/${op.operationId}?api-version=2019-03-31`;
      op = (await call(p, "GET", path, { auth })).json() as typeof op;
    }
    assert.equal(op.status, "failed", "the device is told failed: the hub never answered in time");
    assert.ok(devices.has("late-hub"), "the hub created the identity it never confirmed");
    slow = false;
    await until(async () => !devices.has("late-hub"), 10_000, "the identity no record points at is removed");
  } finally {
    hub.closeAllConnections();
    hub.close();
    await p.dispose();
    await ext.dispose();
  }
});
