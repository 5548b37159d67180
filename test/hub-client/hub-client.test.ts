// The linked-hub REST client (iothub-api.md §3.1, §4, §5, §8) against the built-in hub of a real
// `provisio serve`, and against small TLS servers for what the built-in hub cannot show (wire
// details, the newer error form, timeouts, dropped connections, untrusted certificates).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import { createServer as createTcpServer, type Socket } from "node:net";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseSasToken, signatureMatches } from "../../src/attestation/sas-token.js";
import {
  type HubClient,
  HubError,
  hubClientFromConnectionString,
  type RestHubClient,
} from "../../src/hub-client/hub-client.js";
import { parseHubErrorBody } from "../../src/hub-client/hub-errors.js";
import { selfSignedDeviceCert } from "../support/certs.js";
import { hubOf } from "../support/hub-clients.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";

const key = (): string => randomBytes(32).toString("base64");

const sasDevice = (deviceId: string, primaryKey = key(), secondaryKey = key()) => ({
  deviceId,
  status: "enabled" as const,
  authentication: { type: "sas" as const, symmetricKey: { primaryKey, secondaryKey } },
});

const hubError = (status: number, code: string, message?: RegExp) => (err: unknown) => {
  assert.ok(err instanceof HubError, `expected a HubError, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  assert.equal(err.status, status, err.message);
  if (message) assert.match(err.message, message);
  return true;
};

/** A port nothing listens on: bound by the OS, then released. */
async function closedPort(): Promise<number> {
  const server = createTcpServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as { port: number }).port;
}

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

describe("hub client", () => {
  let p: ProvisioProcess;
  let client: RestHubClient;
  /** createOrUpdateDevice's identity (the `created` flag is checked where it matters). */
  const upsert = async (c: HubClient, d: Parameters<HubClient["createOrUpdateDevice"]>[0]) =>
    (await c.createOrUpdateDevice(d)).identity;
  before(async () => {
    p = await startProvisio();
    client = hubClientFromConnectionString(hubOf(p).connectionString, {
      host: "127.0.0.1",
      port: p.info.ports.https,
      ca: p.ca,
    });
  });
  after(async () => {
    client?.close();
    await p?.dispose();
  });

  describe("against the built-in hub", () => {
    test("hostName is the HostName of the connection string", () => {
      assert.equal(client.hostName, hubOf(p).hostName);
    });

    test("putDevice creates a sas device with the keys the device holds (iothub-api.md §8.1 step 1)", async () => {
      const want = sasDevice("hc-create");
      const created = await client.putDevice(want);
      assert.equal(created.deviceId, "hc-create");
      assert.equal(created.status, "enabled");
      assert.equal(created.authentication.type, "sas");
      assert.deepEqual(created.authentication.symmetricKey, want.authentication.symmetricKey);
      assert.ok(created.etag && created.generationId);
      assert.equal(created.capabilities.iotEdge, false);
    });

    test("creating an existing device is DeviceAlreadyExists; createOrUpdateDevice then updates keys and status (§8.1 step 2)", async () => {
      const made = await client.createOrUpdateDevice(sasDevice("hc-again"));
      assert.equal(made.created, true);
      const first = made.identity;
      await assert.rejects(client.putDevice(sasDevice("hc-again")), hubError(409, "DeviceAlreadyExists", /hc-again/));
      const second = { ...sasDevice("hc-again"), status: "disabled" as const, statusReason: "replaced" };
      const again = await client.createOrUpdateDevice(second);
      assert.equal(again.created, false, "an update, so a failed registration must not delete it");
      const updated = again.identity;
      assert.deepEqual(updated.authentication.symmetricKey, second.authentication.symmetricKey, "keys replaced");
      assert.notDeepEqual(updated.authentication.symmetricKey, first.authentication.symmetricKey);
      assert.equal(updated.status, "disabled");
      assert.equal(updated.statusReason, "replaced");
      assert.equal(updated.generationId, first.generationId, "same device, updated in place");
      assert.notEqual(updated.etag, first.etag);
      const read = await client.getDevice("hc-again");
      assert.equal(read?.status, "disabled");
      assert.deepEqual(read?.authentication.symmetricKey, second.authentication.symmetricKey);
    });

    test("getDevice returns the identity; an unknown device is undefined", async () => {
      const created = await upsert(client, sasDevice("hc-get"));
      const got = await client.getDevice("hc-get");
      assert.deepEqual(got, created);
      assert.equal(await client.getDevice("hc-never-created"), undefined);
    });

    test("putDevice with If-Match: a current etag updates, a stale etag is PreconditionFailed", async () => {
      const created = await client.putDevice(sasDevice("hc-etag"));
      const updated = await client.putDevice({ ...sasDevice("hc-etag"), status: "disabled" }, created.etag);
      assert.equal(updated.status, "disabled");
      await assert.rejects(
        client.putDevice(sasDevice("hc-etag"), created.etag),
        hubError(412, "PreconditionFailed", /hc-etag/),
      );
      await assert.rejects(
        client.putDevice(sasDevice("hc-etag-missing"), "*"),
        hubError(404, "DeviceNotFound"),
        "an update of a missing device does not create it",
      );
    });

    test("device ids with reserved URL characters are percent-encoded in paths", async () => {
      const id = "dev#1?x=%2F;y@z$'";
      const created = await upsert(client, sasDevice(id));
      assert.equal(created.deviceId, id);
      assert.equal((await client.getDevice(id))?.deviceId, id);
      assert.equal((await client.getTwin(id)).deviceId, id);
      assert.equal(await client.deleteDevice(id), true);
    });

    test("an X.509 device is selfSigned with the thumbprint of the leaf the device presented (§8.1)", async () => {
      const leaf = await selfSignedDeviceCert("hc-x509");
      const created = await upsert(client, {
        deviceId: "hc-x509",
        status: "enabled",
        authentication: {
          type: "selfSigned",
          x509Thumbprint: { primaryThumbprint: leaf.sha1, secondaryThumbprint: null },
        },
      });
      assert.equal(created.authentication.type, "selfSigned");
      assert.equal(created.authentication.x509Thumbprint.primaryThumbprint, leaf.sha1);
      assert.equal(created.authentication.x509Thumbprint.secondaryThumbprint, null);
      assert.deepEqual(created.authentication.symmetricKey, { primaryKey: null, secondaryKey: null });
    });

    test("the iotEdge capability is set on create and cleared by an update with iotEdge false", async () => {
      const edge = await upsert(client, { ...sasDevice("hc-edge"), capabilities: { iotEdge: true } });
      assert.equal(edge.capabilities.iotEdge, true);
      assert.equal((await client.getDevice("hc-edge"))?.capabilities.iotEdge, true);
      const plain = await upsert(client, { ...sasDevice("hc-edge"), capabilities: { iotEdge: false } });
      assert.equal(plain.capabilities.iotEdge, false);
    });

    test("a DeviceIdentity read from one hub can be put back as is (migration, §8.2)", async () => {
      const original = await upsert(client, { ...sasDevice("hc-echo"), capabilities: { iotEdge: true } });
      const echoed = await client.putDevice(original, "*");
      assert.deepEqual(echoed.authentication, original.authentication);
      assert.equal(echoed.capabilities.iotEdge, true);
    });

    test("getTwin shows what replaceTwin wrote; a stale twin etag is PreconditionFailed", async () => {
      await upsert(client, sasDevice("hc-twin"));
      const written = await client.replaceTwin("hc-twin", {
        tags: { env: "dev", site: { floor: 3 } },
        properties: { desired: { interval: 30, cfg: { mode: "eco" } } },
      });
      assert.deepEqual(written.tags, { env: "dev", site: { floor: 3 } });
      const twin = await client.getTwin("hc-twin");
      assert.equal(twin.deviceId, "hc-twin");
      assert.deepEqual(twin.tags, { env: "dev", site: { floor: 3 } });
      const desired = (twin.properties as { desired: Record<string, unknown> }).desired;
      assert.equal(desired.interval, 30);
      assert.deepEqual(desired.cfg, { mode: "eco" });
      assert.equal(desired.$version, 2);

      await client.replaceTwin("hc-twin", { tags: { owner: "ops" } });
      await assert.rejects(
        client.replaceTwin("hc-twin", { tags: { a: 1 } }, String(twin.etag)),
        hubError(412, "PreconditionFailed"),
        "the etag read before the last write is stale",
      );
      await assert.rejects(client.getTwin("hc-no-twin"), hubError(404, "DeviceNotFound", /hc-no-twin/));
    });

    test("replaceTwin replaces tags and desired: keys not in the new twin are gone", async () => {
      await upsert(client, sasDevice("hc-replace"));
      await client.replaceTwin("hc-replace", {
        tags: { env: "dev", old: true },
        properties: { desired: { interval: 30, legacy: { x: 1 } } },
      });
      const replaced = await client.replaceTwin("hc-replace", {
        tags: { env: "prod" },
        properties: { desired: { interval: 60 } },
      });
      assert.deepEqual(replaced.tags, { env: "prod" });
      const desired = (replaced.properties as { desired: Record<string, unknown> }).desired;
      assert.equal(desired.interval, 60);
      assert.equal(desired.legacy, undefined);
      const read = await client.getTwin("hc-replace");
      assert.deepEqual(read.tags, { env: "prod" });
      assert.equal((read.properties as { desired: Record<string, unknown> }).desired.legacy, undefined);
    });

    test("deleteDevice is true, then false once the device is gone (§8.3)", async () => {
      await upsert(client, sasDevice("hc-delete"));
      assert.equal(await client.deleteDevice("hc-delete"), true);
      assert.equal(await client.getDevice("hc-delete"), undefined);
      assert.equal(await client.deleteDevice("hc-delete"), false);
    });

    test("deleteDevice with a stale etag is PreconditionFailed and keeps the device", async () => {
      const created = await upsert(client, sasDevice("hc-delete-etag"));
      const updated = await client.putDevice({ ...sasDevice("hc-delete-etag"), status: "disabled" }, "*");
      await assert.rejects(client.deleteDevice("hc-delete-etag", created.etag), hubError(412, "PreconditionFailed"));
      assert.equal(await client.deleteDevice("hc-delete-etag", updated.etag), true);
    });

    test("an invalid identity is ArgumentInvalid with the hub's reason", async () => {
      await assert.rejects(
        client.putDevice({
          deviceId: "hc-bad-thumb",
          status: "enabled",
          authentication: { type: "selfSigned", x509Thumbprint: { primaryThumbprint: "xyz" } },
        }),
        hubError(400, "ArgumentInvalid", /thumbprint/i),
      );
    });

    test("a wrong key is HubError 401 IotHubUnauthorizedAccess naming the hub", async () => {
      const hub = hubOf(p);
      const wrong = hubClientFromConnectionString(
        hub.connectionString.replace(/SharedAccessKey=.*/, `SharedAccessKey=${key()}`),
        { host: "127.0.0.1", port: p.info.ports.https, ca: p.ca },
      );
      try {
        await assert.rejects(
          wrong.getDevice("hc-create"),
          hubError(401, "IotHubUnauthorizedAccess", new RegExp(`${hub.hostName}.*connection string`)),
        );
        await assert.rejects(upsert(wrong, sasDevice("hc-unauthorized")), (err: unknown) => {
          assert.ok(err instanceof HubError && err.status === 401 && !err.transient);
          return true;
        });
      } finally {
        wrong.close();
      }
    });

    test("50 parallel createOrUpdateDevice calls all succeed, half of them updates", async () => {
      await Promise.all(Array.from({ length: 25 }, (_, i) => client.putDevice(sasDevice(`hc-par-${i}`))));
      const devices = Array.from({ length: 50 }, (_, i) => ({
        ...sasDevice(`hc-par-${i}`),
        statusReason: `round ${i}`,
      }));
      const results = await Promise.all(devices.map((d) => upsert(client, d)));
      for (const [i, r] of results.entries()) {
        assert.equal(r.deviceId, `hc-par-${i}`);
        assert.equal(r.statusReason, `round ${i}`);
        assert.deepEqual(r.authentication.symmetricKey, devices[i]?.authentication.symmetricKey);
      }
    });

    test("20 parallel createOrUpdateDevice calls for one device all succeed; one of them wins", async () => {
      const devices = Array.from({ length: 20 }, () => sasDevice("hc-contended"));
      const results = await Promise.allSettled(devices.map((d) => client.createOrUpdateDevice(d)));
      const failures = results.flatMap((r) => (r.status === "rejected" ? [String(r.reason)] : []));
      assert.deepEqual(failures, []);
      const final = await client.getDevice("hc-contended");
      assert.ok(
        devices.some((d) => d.authentication.symmetricKey.primaryKey === final?.authentication.symmetricKey.primaryKey),
      );
    });
  });

  describe("when the hub cannot be reached", () => {
    test("a closed port is HubError Unreachable, quickly", async () => {
      const port = await closedPort();
      const down = hubClientFromConnectionString(hubOf(p).connectionString, { host: "127.0.0.1", port, ca: p.ca });
      const started = Date.now();
      try {
        await assert.rejects(
          down.getDevice("any"),
          hubError(0, "Unreachable", new RegExp(`${hubOf(p).hostName}.*127\\.0\\.0\\.1:${port}.*refused`)),
        );
        assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
      } finally {
        down.close();
      }
    });

    test("a TLS server with an untrusted certificate is HubError Unreachable mentioning the certificate", async () => {
      const cert = await selfSignedDeviceCert("untrusted-hub.example");
      const server = createServer({ cert: cert.certPem, key: cert.keyPem }, (_req, res) => res.end("{}"));
      const port = await listen(server);
      const untrusting = hubClientFromConnectionString(
        `HostName=untrusted-hub.example;SharedAccessKeyName=iothubowner;SharedAccessKey=${key()}`,
        { host: "127.0.0.1", port, ca: p.ca },
      );
      try {
        await assert.rejects(untrusting.getDevice("any"), (err: unknown) => {
          hubError(0, "Unreachable", /certificate/i)(err);
          assert.ok(err instanceof HubError && err.transient);
          return true;
        });
      } finally {
        untrusting.close();
        await closeServer(server);
      }
    });

    test("a certificate that does not cover the hub's host name is Unreachable mentioning the certificate", async () => {
      // provisio's certificate is trusted but covers its own names, not this one.
      const wrongName = hubClientFromConnectionString(
        `HostName=someone-else.example;SharedAccessKeyName=iothubowner;SharedAccessKey=${key()}`,
        { host: "127.0.0.1", port: p.info.ports.https, ca: p.ca },
      );
      try {
        await assert.rejects(wrongName.getDevice("any"), hubError(0, "Unreachable", /certificate.*someone-else/i));
      } finally {
        wrongName.close();
      }
    });

    test("a hub that does not answer in time is HubError Timeout (504)", async () => {
      const { certPem, keyPem } = provisioServerCert(p);
      const server = createServer({ cert: certPem, key: keyPem }, () => {
        // Never answers.
      });
      const port = await listen(server);
      const slow = hubClientFromConnectionString(
        hubOf(p).connectionString,
        { host: "127.0.0.1", port, ca: p.ca },
        { timeoutMs: 300 },
      );
      const started = Date.now();
      try {
        await assert.rejects(
          slow.getTwin("any"),
          hubError(504, "Timeout", /did not answer GET \/twins\/any within 300 ms/),
        );
        assert.ok(Date.now() - started < 2000);
      } finally {
        slow.close();
        await closeServer(server);
      }
    });
  });

  describe("on the wire (a recording hub)", () => {
    interface Recorded {
      method: string;
      url: string;
      headers: IncomingMessage["headers"];
      body: string;
      socket: Socket;
    }
    let server: Server;
    let port: number;
    let recorded: Recorded[] = [];
    let reply: (r: Recorded, res: ServerResponse) => void = (_r, res) => res.end();

    before(async () => {
      const { certPem, keyPem } = provisioServerCert(p);
      server = createServer({ cert: certPem, key: keyPem }, (req, res) => {
        let body = "";
        req.setEncoding("utf8");
        req.on("data", (c: string) => {
          body += c;
        });
        req.on("end", () => {
          const r = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body, socket: req.socket };
          recorded.push(r);
          reply(r, res);
        });
      });
      port = await listen(server);
    });
    after(async () => {
      await closeServer(server);
    });

    const recordingClient = (): RestHubClient =>
      hubClientFromConnectionString(hubOf(p).connectionString, { host: "127.0.0.1", port, ca: p.ca });
    const json =
      (status: number, body: unknown, headers: Record<string, string> = {}) =>
      (_r: Recorded, res: ServerResponse) => {
        res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", ...headers });
        res.end(JSON.stringify(body));
      };

    test("requests carry api-version, the hub's Host, a service SAS for the host name and quoted If-Match", async () => {
      recorded = [];
      reply = json(200, { deviceId: "d", etag: "MQ==" });
      const c = recordingClient();
      try {
        await c.putDevice({ ...sasDevice("a/b c"), etag: "MA==", generationId: "1" });
        await c.putDevice(sasDevice("a/b c"), "*");
        await c.replaceTwin("a/b c", { tags: { x: 1 } }, "AAAAAAAAAAI=");
        await c.getDevice("a/b c");
      } finally {
        c.close();
      }
      const [create, update, patch, get] = recorded;
      assert.ok(create && update && patch && get);
      assert.equal(create.method, "PUT");
      assert.equal(create.url, "/devices/a%2Fb%20c?api-version=2021-04-12");
      assert.equal(create.headers.host, hubOf(p).hostName, "the hub's own name, not the dialed address");
      assert.equal(create.headers["content-type"], "application/json; charset=utf-8");
      assert.equal(create.headers["if-match"], undefined, "a create sends no If-Match");
      const body = JSON.parse(create.body) as Record<string, unknown>;
      assert.deepEqual(
        Object.keys(body).sort(),
        ["authentication", "deviceId", "status"],
        "hub-owned fields stay behind",
      );
      assert.equal(update.headers["if-match"], '"*"');
      assert.equal(patch.method, "PUT");
      assert.equal(patch.url, "/twins/a%2Fb%20c?api-version=2021-04-12");
      assert.equal(patch.headers["if-match"], '"AAAAAAAAAAI="');
      assert.equal(get.headers["content-type"], undefined);

      const token = parseSasToken(String(create.headers.authorization));
      assert.ok(token);
      assert.equal(token.sr, hubOf(p).hostName);
      assert.equal(token.skn, "iothubowner");
      const now = Date.now() / 1000;
      assert.ok(token.se > now + 3500 && token.se <= now + 3601, `se ${token.se}`);
      const hubKey = /SharedAccessKey=(.*)$/.exec(hubOf(p).connectionString)?.[1] ?? "";
      assert.ok(signatureMatches(token, [hubKey]));
      assert.equal(get.headers.authorization, create.headers.authorization, "the token is cached");
      assert.equal(new Set(recorded.map((r) => r.socket)).size, 1, "one kept-alive connection for sequential calls");
    });

    test("the SAS token is reused until 5 minutes before it expires, then signed anew", async (t) => {
      recorded = [];
      reply = json(200, { deviceId: "d" });
      const realNow = Date.now();
      let skew = 0;
      t.mock.method(Date, "now", () => realNow + skew);
      const c = recordingClient();
      try {
        await c.getDevice("t");
        skew = 3200_000; // 400 s left
        await c.getDevice("t");
        skew = 3400_000; // 200 s left
        await c.getDevice("t");
      } finally {
        c.close();
      }
      const [first, second, third] = recorded.map((r) => parseSasToken(String(r.headers.authorization)));
      assert.ok(first && second && third);
      assert.equal(second.se, first.se);
      assert.equal(third.se, first.se + 3400);
    });

    test("at most 32 connections carry 50 parallel requests", async () => {
      recorded = [];
      reply = (_r, res) => setTimeout(() => json(200, { deviceId: "d" })(_r, res), 50);
      const c = recordingClient();
      try {
        await Promise.all(Array.from({ length: 50 }, (_, i) => c.getDevice(`par-${i}`)));
      } finally {
        c.close();
      }
      assert.equal(recorded.length, 50);
      const sockets = new Set(recorded.map((r) => r.socket)).size;
      assert.ok(sockets <= 32 && sockets > 1, `${sockets} connections`);
    });

    test("a kept-alive connection the hub dropped is retried once on a new one", async () => {
      recorded = [];
      const seen = new WeakSet<Socket>();
      reply = (r, res) => {
        if (seen.has(r.socket)) {
          r.socket.destroy(); // the hub closed the idle connection just as we reused it
          return;
        }
        seen.add(r.socket);
        json(200, { deviceId: "d" })(r, res);
      };
      const c = recordingClient();
      try {
        assert.equal((await c.getDevice("one"))?.deviceId, "d");
        assert.equal((await c.getDevice("two"))?.deviceId, "d");
      } finally {
        c.close();
      }
      assert.equal(recorded.length, 3);
    });

    test("the newer error form (JSON in Message) and the iothub-errorcode header become HubError codes", async () => {
      const c = recordingClient();
      try {
        reply = json(404, {
          Message: JSON.stringify({
            errorCode: 404001,
            trackingId: "abc123",
            message: "Device not found",
            timestampUtc: "2024-01-01T00:00:00Z",
          }),
          ExceptionMessage: "",
        });
        assert.equal(await c.getDevice("gone"), undefined, "404001 is DeviceNotFound");
        await assert.rejects(c.getTwin("gone"), (err: unknown) => {
          hubError(404, "DeviceNotFound", /Device not found/)(err);
          assert.equal((err as HubError).trackingId, "abc123");
          return true;
        });

        reply = json(
          429,
          { Message: "ErrorCode:ThrottlingBacklogTimeout;slow down" },
          { "iothub-errorcode": "ThrottlingException" },
        );
        await assert.rejects(c.getTwin("x"), (err: unknown) => {
          hubError(429, "ThrottlingException", /slow down/)(err);
          assert.ok((err as HubError).transient);
          return true;
        });

        reply = json(404, { Message: "ErrorCode:NotFound;no such route" });
        await assert.rejects(c.getDevice("x"), hubError(404, "NotFound"), "only DeviceNotFound means absent");
        await assert.rejects(c.deleteDevice("x"), hubError(404, "NotFound"));

        reply = (_r, res) => {
          res.writeHead(502, { "Content-Type": "text/html" });
          res.end("<html>Bad gateway</html>");
        };
        await assert.rejects(c.getDevice("x"), hubError(502, "ServerError", /Bad gateway/));

        reply = (_r, res) => {
          res.writeHead(200, { "Content-Type": "text/plain" });
          res.end("not json");
        };
        await assert.rejects(c.getTwin("x"), hubError(200, "InvalidResponse"));
      } finally {
        c.close();
      }
    });
  });
});

describe("hub error bodies", () => {
  test("classic body: code from ErrorCode, text without the tracking line, tracking id kept", () => {
    assert.deepEqual(
      parseHubErrorBody(
        JSON.stringify({
          Message:
            "ErrorCode:DeviceAlreadyExists;A device with ID 'iotdevice1' is already registered.\r\nTracking ID:e4cb12-G:11-TimeStamp:07/16/2016 00:12:41",
          ExceptionMessage: "Tracking ID:e4cb12-G:11-TimeStamp:07/16/2016 00:12:41",
        }),
      ),
      {
        code: "DeviceAlreadyExists",
        text: "A device with ID 'iotdevice1' is already registered.",
        trackingId: "e4cb12",
      },
    );
  });

  test("structured bodies with an unknown numeric code keep the number in the text", () => {
    assert.deepEqual(parseHubErrorBody(JSON.stringify({ errorCode: 403999, message: "Something new" })), {
      text: "Something new (error 403999)",
    });
  });
});

describe("hub connection strings", () => {
  const valid = `HostName=my-hub.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey=${key()}`;

  test("a service connection string makes a client for its HostName", () => {
    const c = hubClientFromConnectionString(valid);
    assert.equal(c.hostName, "my-hub.azure-devices.net");
    c.close();
  });

  test("invalid connection strings throw a clear Error at construction, never echoing the key", () => {
    const secret = key();
    const cases: [string, RegExp][] = [
      ["", /missing HostName, SharedAccessKeyName, SharedAccessKey/],
      [`HostName=h.example;SharedAccessKey=${secret}`, /missing SharedAccessKeyName/],
      [`HostName=h.example;DeviceId=d1;SharedAccessKey=${secret}`, /device connection string/],
      [`HostName=https://h.example/;SharedAccessKeyName=p;SharedAccessKey=${secret}`, /bare host name/],
      ["HostName=h.example;SharedAccessKeyName=p;SharedAccessKey=not base64!", /base64/],
    ];
    for (const [text, message] of cases) {
      assert.throws(
        () => hubClientFromConnectionString(text),
        (err: Error) => {
          assert.match(err.message, message);
          assert.match(err.message, /IoT hub connection string/);
          assert.ok(!err.message.includes(secret));
          return true;
        },
        text,
      );
    }
  });
});

/** provisio's own server certificate (covers the built-in hub names), for recording servers trusted via p.ca. */
function provisioServerCert(p: ProvisioProcess): { certPem: string; keyPem: string } {
  const dir = dirname(p.info.caFile);
  return {
    certPem: readFileSync(join(dir, "server.pem"), "utf8"),
    keyPem: readFileSync(join(dir, "server.key"), "utf8"),
  };
}
