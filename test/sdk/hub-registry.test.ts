// The real azure-iothub Registry against a built-in hub of `provisio serve` (iothub-api.md §4-5).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Registry, Twin } from "azure-iothub";
import { hubOf, registryClient } from "../support/hub-clients.js";
import { call } from "../support/management.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";

/** Identity fields azure-iothub's Device type does not declare (iothub-api.md §4.1). */
type Scoped = { deviceScope?: string | null; parentScopes?: string[]; generationId?: string };

const errorNamed = (name: string) => (err: Error) => {
  assert.equal(err.name, name, err.message);
  return true;
};

describe("azure-iothub Registry against the built-in hub", () => {
  let p: ProvisioProcess;
  let registry: Registry;
  before(async () => {
    p = await startProvisio({ args: ["--hubs", "2"] });
    registry = registryClient(p);
  });
  after(async () => {
    await p.dispose();
  });

  test("provisio.json lists every built-in hub with an iothubowner connection string", () => {
    assert.deepEqual(
      p.info.hubs.map((h) => [h.name, h.hostName]),
      [
        ["hub-1", "hub-1.localhost"],
        ["hub-2", "hub-2.localhost"],
      ],
    );
    for (const h of p.info.hubs) {
      assert.match(
        h.connectionString,
        new RegExp(`^HostName=${h.hostName};SharedAccessKeyName=iothubowner;SharedAccessKey=`),
      );
    }
  });

  test("create generates keys; get, list and update (echo with etag) work; stale etags get 412", async () => {
    const created = (await registry.create({ deviceId: "dev-sas" })).responseBody;
    assert.equal(created.deviceId, "dev-sas");
    assert.equal((created.authentication as { type?: string } | undefined)?.type, "sas");
    assert.equal(Buffer.from(created.authentication?.symmetricKey?.primaryKey ?? "", "base64").length, 32);
    assert.equal(created.status, "enabled");
    assert.ok(created.generationId && created.etag);
    await assert.rejects(registry.create({ deviceId: "dev-sas" }), errorNamed("DeviceAlreadyExistsError"));

    const got = (await registry.get("dev-sas")).responseBody;
    assert.deepEqual(got.authentication, created.authentication);
    assert.equal(got.connectionState, "Disconnected");
    const list = (await registry.list()).responseBody;
    assert.ok(list.some((d) => d.deviceId === "dev-sas"));

    const updated = (await registry.update({ ...got, status: "disabled", statusReason: "maintenance" })).responseBody;
    assert.equal(updated.status, "disabled");
    assert.notEqual(updated.etag, got.etag);
    assert.equal(updated.generationId, got.generationId);
    assert.deepEqual(
      updated.authentication?.symmetricKey,
      created.authentication?.symmetricKey,
      "echoed keys are kept",
    );
    // Registry.update always sends If-Match "*"; a client that sends the etag it read gets 412 when stale.
    const stale = await call(p, "PUT", "/devices/dev-sas", {
      connectionString: hubOf(p).connectionString,
      headers: { "if-match": `"${got.etag}"` },
      body: JSON.stringify({ ...got, status: "enabled" }),
    });
    assert.equal(stale.status, 412);
    assert.equal(stale.headers["iothub-errorcode"], "PreconditionFailed");
    assert.match((stale.json() as { Message: string }).Message, /^ErrorCode:PreconditionFailed;/);
    assert.equal((await registry.get("dev-sas")).responseBody.status, "disabled", "the refused update changed nothing");
  });

  test("X.509 self-signed, CA and edge identities", async () => {
    const thumb = "355AB87F452AC8CAB3EF1F35DB12779E49BED2C1";
    const x = (
      await registry.create({
        deviceId: "x509self",
        authentication: { x509Thumbprint: { primaryThumbprint: thumb, secondaryThumbprint: "ab".repeat(32) } },
      })
    ).responseBody;
    assert.equal((x.authentication as { type?: string } | undefined)?.type, "selfSigned");
    assert.equal(x.authentication?.x509Thumbprint?.primaryThumbprint, thumb);
    assert.equal(x.authentication?.symmetricKey?.primaryKey, null);
    const ca = (await registry.create({ deviceId: "x509ca", authentication: { type: "certificateAuthority" } }))
      .responseBody;
    assert.equal((ca.authentication as { type?: string } | undefined)?.type, "certificateAuthority");
    const edge = (await registry.create({ deviceId: "dev-edge", capabilities: { iotEdge: true } })).responseBody;
    assert.equal(edge.capabilities?.iotEdge, true);
    await assert.rejects(
      registry.create({ deviceId: "bad-thumb", authentication: { x509Thumbprint: { primaryThumbprint: "xyz" } } }),
      errorNamed("ArgumentError"),
    );
    await assert.rejects(registry.create({ deviceId: "bad id with spaces" }), errorNamed("ArgumentError"));
  });

  test("delete with If-Match * removes the device and its twin; unknown devices are DeviceNotFound", async () => {
    await registry.create({ deviceId: "dev-gone" });
    await registry.delete("dev-gone");
    await assert.rejects(registry.get("dev-gone"), errorNamed("DeviceNotFoundError"));
    await assert.rejects(registry.getTwin("dev-gone"), errorNamed("DeviceNotFoundError"));
    await assert.rejects(registry.delete("dev-gone"), errorNamed("DeviceNotFoundError"));
  });

  test("twins: get, update with the twin's etag, updateTwin with *, versions and metadata", async () => {
    await registry.create({ deviceId: "dev-twin" });
    const twin = (await registry.getTwin("dev-twin")).responseBody as Twin;
    assert.equal(twin.deviceId, "dev-twin");
    assert.equal(twin.etag, "AAAAAAAAAAE=");
    const updated = (
      await twin.update({ tags: { env: "dev", site: { floor: 3 } }, properties: { desired: { interval: 30 } } })
    ).result as Twin & { version: number };
    assert.deepEqual(updated.tags, { env: "dev", site: { floor: 3 } });
    assert.equal(updated.properties.desired.interval, 30);
    assert.equal(updated.properties.desired.$version, 2);
    assert.ok(updated.properties.desired.$metadata.interval.$lastUpdated);
    assert.equal(updated.etag, "AAAAAAAAAAI=");
    const fresh = (await registry.getTwin("dev-twin")).responseBody as Twin & { version: number };
    assert.equal(fresh.version, 2);

    const patched = (await registry.updateTwin("dev-twin", { tags: { site: null } }, "*")).responseBody as Twin;
    assert.deepEqual(patched.tags, { env: "dev" }, "null deletes");
    await assert.rejects(
      registry.updateTwin("dev-twin", { tags: { a: 1 } }, twin.etag),
      errorNamed("InvalidEtagError"),
      "the first twin etag is stale now",
    );
    await assert.rejects(
      registry.updateTwin("dev-twin", { properties: { reported: { x: 1 } } }, "*"),
      errorNamed("ArgumentError"),
      "the service cannot write reported properties",
    );
  });

  test("twin query: SELECT * FROM devices WHERE tags..., paged by the callback form", async () => {
    for (let i = 0; i < 5; i++) {
      await registry.create({ deviceId: `q-${i}` });
      await registry.updateTwin(`q-${i}`, { tags: { fleet: i % 2 === 0 ? "even" : "odd" } }, "*");
    }
    const query = registry.createQuery("SELECT * FROM devices WHERE tags.fleet = 'even'", 2);
    const ids: string[] = [];
    do {
      const page = await new Promise<Twin[]>((resolve, reject) =>
        query.nextAsTwin((err, result) => (err ? reject(err) : resolve(result as Twin[]))),
      );
      ids.push(...page.map((t) => t.deviceId));
    } while (query.hasMoreResults);
    assert.deepEqual(ids.sort(), ["q-0", "q-2", "q-4"]);
    await assert.rejects(
      new Promise((resolve, reject) =>
        registry
          .createQuery("SELECT deviceId FROM devices GROUP BY x")
          .next((err, r) => (err ? reject(err) : resolve(r))),
      ),
      errorNamed("ArgumentError"),
    );
  });

  test("IoT Edge: edge devices get their own deviceScope, plain devices none (issue 15.8)", async () => {
    const edge = (await registry.create({ deviceId: "edge-gw", capabilities: { iotEdge: true } }))
      .responseBody as Scoped;
    assert.equal(edge.deviceScope, `ms-azure-iot-edge://edge-gw-${edge.generationId}`);
    assert.deepEqual(edge.parentScopes, []);
    assert.equal(((await registry.get("edge-gw")).responseBody as Scoped).deviceScope, edge.deviceScope);
    const plain = (await registry.create({ deviceId: "plain-dev" })).responseBody as Scoped;
    assert.equal(plain.deviceScope, null);
    assert.deepEqual(plain.parentScopes, []);
    const twin = (await registry.getTwin("edge-gw")).responseBody as unknown as Record<string, unknown>;
    assert.equal(twin.deviceScope, edge.deviceScope);
    assert.deepEqual(twin.parentScopes, []);
  });

  test("IoT Edge: parent set, children list, get parent and children remove, as az iot hub device-identity does them", async () => {
    const parent = (await registry.create({ deviceId: "edge-parent", capabilities: { iotEdge: true } }))
      .responseBody as Scoped;
    const scope = String(parent.deviceScope);
    await registry.create({ deviceId: "leaf-child" });
    await registry.create({ deviceId: "edge-child", capabilities: { iotEdge: true } });
    const hub = hubOf(p);
    /** `_update_device_parent`: GET the device, set the scope, PUT it back with If-Match "<etag>". */
    const setParent = async (id: string, edit: (d: Record<string, unknown>) => void) => {
      const got = await call(p, "GET", `/devices/${id}?api-version=2021-04-12`, {
        connectionString: hub.connectionString,
      });
      const device = got.json() as Record<string, unknown>;
      edit(device);
      const put = await call(p, "PUT", `/devices/${id}?api-version=2021-04-12`, {
        connectionString: hub.connectionString,
        body: JSON.stringify(device),
        headers: { "if-match": `"${String(device.etag)}"` },
      });
      return put;
    };
    const leaf = await setParent("leaf-child", (d) => {
      d.deviceScope = scope;
    });
    assert.equal(leaf.status, 200, leaf.text);
    assert.deepEqual((leaf.json() as Record<string, unknown>).parentScopes, [scope]);
    const edgeChild = await setParent("edge-child", (d) => {
      d.parentScopes = [scope];
    });
    assert.equal(edgeChild.status, 200, edgeChild.text);
    const edgeChildBody = edgeChild.json() as Record<string, unknown>;
    assert.match(String(edgeChildBody.deviceScope), /^ms-azure-iot-edge:\/\/edge-child-\d+$/);
    assert.deepEqual(edgeChildBody.parentScopes, [scope]);

    // children list: `select deviceId from devices where array_contains(parentScopes, '<scope>')`.
    const children = await new Promise<Record<string, unknown>[]>((resolve, reject) =>
      registry
        .createQuery(`select deviceId from devices where array_contains(parentScopes, '${scope}')`)
        .next((err, r) => (err ? reject(err) : resolve(r as Record<string, unknown>[]))),
    );
    assert.deepEqual(children.map((c) => c.deviceId).sort(), ["edge-child", "leaf-child"]);
    assert.deepEqual(Object.keys(children[0] ?? {}), ["deviceId"]);
    // Older CLI versions: `select * from devices where capabilities.iotEdge=false and deviceScope='<scope>'`.
    const leaves = await new Promise<Record<string, unknown>[]>((resolve, reject) =>
      registry
        .createQuery(`select * from devices where capabilities.iotEdge=false and deviceScope='${scope}'`)
        .next((err, r) => (err ? reject(err) : resolve(r as Record<string, unknown>[]))),
    );
    assert.deepEqual(
      leaves.map((c) => c.deviceId),
      ["leaf-child"],
    );

    // get parent: the device between the prefix and the last '-' of parentScopes[0].
    const child = (await registry.get("leaf-child")).responseBody as unknown as { parentScopes: string[] };
    const first = child.parentScopes[0] ?? "";
    assert.equal(first.slice("ms-azure-iot-edge://".length, first.lastIndexOf("-")), "edge-parent");

    // A refreshed identity (what DPS sends on re-registration: no scopes in the body) keeps its parent.
    const refreshed = (await registry.update({ deviceId: "leaf-child", status: "enabled" })).responseBody as Scoped;
    assert.equal(refreshed.deviceScope, scope);

    // children remove: the scope set to "" (leaf) or parentScopes to [] (edge).
    const removed = await setParent("leaf-child", (d) => {
      d.deviceScope = "";
    });
    assert.equal((removed.json() as Record<string, unknown>).deviceScope, null);
    assert.deepEqual((removed.json() as Record<string, unknown>).parentScopes, []);
    const removedEdge = await setParent("edge-child", (d) => {
      d.parentScopes = [];
    });
    assert.deepEqual((removedEdge.json() as Record<string, unknown>).parentScopes, []);
  });

  test("IoT Edge: a parent must be an edge device of this hub, and not the device itself", async () => {
    await registry.create({ deviceId: "not-edge" });
    const plainScope = "ms-azure-iot-edge://not-edge-1";
    await assert.rejects(
      registry.create({ deviceId: "orphan-1", deviceScope: plainScope } as never),
      errorNamed("ArgumentError"),
    );
    await assert.rejects(
      registry.create({ deviceId: "orphan-2", deviceScope: "ms-azure-iot-edge://nobody-123" } as never),
      errorNamed("ArgumentError"),
    );
    const self = (await registry.create({ deviceId: "self-edge", capabilities: { iotEdge: true } }))
      .responseBody as Scoped & { deviceId: string };
    await assert.rejects(
      registry.update({ ...self, parentScopes: [self.deviceScope] } as never),
      errorNamed("ArgumentError"),
    );
  });

  test("bad tokens and missing rights are 401; hubs are separate and routed by host name", async () => {
    const hub = hubOf(p);
    const wrong = registryClient(
      p,
      hub.connectionString.replace(/SharedAccessKey=.*/, `SharedAccessKey=${Buffer.alloc(32, 3).toString("base64")}`),
    );
    await assert.rejects(wrong.get("dev-sas"), errorNamed("UnauthorizedError"));

    const other = registryClient(p, hubOf(p, 1).connectionString);
    await assert.rejects(other.get("dev-sas"), errorNamed("DeviceNotFoundError"), "hub-2 has its own registry");
    await other.create({ deviceId: "dev-sas" });
    await assert.rejects(
      registryClient(p, hubOf(p, 1).connectionString.replace("hub-2", "hub-1")).get("dev-sas"),
      errorNamed("UnauthorizedError"),
      "hub-2's key does not open hub-1",
    );
  });
});
