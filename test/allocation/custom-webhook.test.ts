// Custom allocation webhook (behaviors.md §4.5): the AllocationRequest we send, and how each webhook answer
// becomes a hub or error 400207 / 400208 / 400209. Webhooks run in-process on 127.0.0.1.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { startExampleWebhook } from "../../examples/custom-allocation-webhook/server.js";
import {
  buildAllocationRequest,
  callAllocationWebhook,
  DEFAULT_RETRY_DELAYS_MS,
  maskWebhookUrl,
  type WebhookOutcome,
} from "../../src/allocation/custom-webhook.js";
import type { EnrollmentGroup, IndividualEnrollment } from "../../src/domain/enrollment.js";
import { symmetricKeysOf } from "../../src/domain/enrollment.js";
import type { ProvisioError } from "../../src/domain/errors.js";
import type { EnrollmentGroupId, RegistrationId } from "../../src/domain/ids.js";
import { ensureTlsMaterial } from "../../src/security/tls-material.js";

const TOASTERS_1 = "contoso-toasters-hub-1098.azure-devices.net";
const TOASTERS_2 = "contoso-toasters-hub-2001.azure-devices.net";
const HEATPUMPS = "contoso-heatpumps-hub-1098.azure-devices.net";
const LINKED = [TOASTERS_1, HEATPUMPS, TOASTERS_2];
const FAST = { timeoutMs: 2000, retryDelaysMs: [10, 20] };
const DEVICE_PAYLOAD = { MyDeviceFirmwareVersion: "12.0.2.5", MyDeviceProvisioningVersion: "1.0.0.0" };

const group: EnrollmentGroup = {
  enrollmentGroupId: "contoso-custom-allocated-devices" as EnrollmentGroupId,
  attestation: {
    type: "symmetricKey",
    symmetricKey: { primaryKey: "cHJpbWFyeS1ncm91cC1rZXk=", secondaryKey: "c2Vjb25kYXJ5LWdyb3VwLWtleQ==" },
  },
  capabilities: { iotEdge: false },
  etag: '"e8002126-0000-0100-0000-5f6b2a570000"',
  provisioningStatus: "enabled",
  reprovisionPolicy: { updateHubAssignment: true, migrateDeviceData: true },
  createdDateTimeUtc: "2020-09-23T10:58:31.62286Z",
  lastUpdatedDateTimeUtc: "2020-09-23T10:58:31.62286Z",
  allocationPolicy: "custom",
  iotHubs: LINKED,
  customAllocationDefinition: {
    webhookUrl: "https://contoso-function-app.azurewebsites.net/api/HttpTrigger1?code=s3cr3t-function-key==",
    apiVersion: "2019-03-31",
  },
};

function groupRequest(registrationId: string, linkedHubs: readonly string[] = LINKED): Record<string, unknown> {
  return buildAllocationRequest({
    enrollment: { kind: "group", group },
    registrationId,
    attestation: { symmetricKey: {} },
    payload: DEVICE_PAYLOAD,
    linkedHubs,
  });
}

const errorOf = (out: WebhookOutcome): ProvisioError => {
  assert.equal(out.ok, false, `expected a failure, got ${JSON.stringify(out)}`);
  return (out as { error: ProvisioError }).error;
};

/** A webhook answering request n with the n-th handler (the last one repeats). */
async function scriptedWebhook(
  handlers: Array<(req: IncomingMessage, res: ServerResponse) => void>,
): Promise<{ url: string; hits: () => number; close: () => Promise<void> }> {
  let hits = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      const handler = handlers[Math.min(hits, handlers.length - 1)];
      hits++;
      handler?.(req, res);
    });
  });
  const url = await listen(server);
  return { url: `${url}/api/HttpTrigger1?code=k`, hits: () => hits, close: () => closeServer(server) };
}

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`));
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

const json =
  (status: number, body: unknown) =>
  (_req: IncomingMessage, res: ServerResponse): void => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };
const text =
  (status: number, body: string) =>
  (_req: IncomingMessage, res: ServerResponse): void => {
    res.writeHead(status, { "content-type": "text/plain" });
    res.end(body);
  };

describe("AllocationRequest body", () => {
  test("a group device gets the group without keys, the masked webhook URL, its runtime context and linkedHubs", () => {
    const body = buildAllocationRequest({
      enrollment: { kind: "group", group },
      registrationId: "contoso-toaster-007",
      currentIotHubHostName: TOASTERS_1,
      currentDeviceId: "contoso-toaster-007",
      attestation: { symmetricKey: {} },
      payload: DEVICE_PAYLOAD,
      linkedHubs: LINKED,
    });
    assert.deepEqual(Object.keys(body), ["enrollmentGroup", "deviceRuntimeContext", "linkedHubs"]);
    const sent = JSON.stringify(body);
    assert.ok(!sent.includes(symmetricKeysOf(group.attestation)?.primaryKey ?? "?"), "primary key leaked");
    assert.ok(!sent.includes("s3cr3t"), "function key leaked");
    const enrollmentGroup = body.enrollmentGroup as Record<string, unknown>;
    assert.deepEqual(enrollmentGroup.attestation, { type: "symmetricKey" });
    assert.deepEqual(enrollmentGroup.customAllocationDefinition, {
      webhookUrl: "https://contoso-function-app.azurewebsites.net/api/HttpTrigger1?****",
      apiVersion: "2019-03-31",
    });
    assert.equal(enrollmentGroup.enrollmentGroupId, "contoso-custom-allocated-devices");
    assert.equal(enrollmentGroup.etag, group.etag);
    assert.deepEqual(enrollmentGroup.iotHubs, LINKED);
    assert.deepEqual(body.deviceRuntimeContext, {
      registrationId: "contoso-toaster-007",
      currentIotHubHostName: TOASTERS_1,
      currentDeviceId: "contoso-toaster-007",
      symmetricKey: {},
      payload: DEVICE_PAYLOAD,
    });
    assert.deepEqual(body.linkedHubs, LINKED);
    // The stored enrollment is untouched.
    assert.match(group.customAllocationDefinition?.webhookUrl ?? "", /code=s3cr3t/);
  });

  test("an individual X.509 device gets individualEnrollment without PEMs and no payload or current hub when absent", () => {
    const info = {
      subjectName: "CN=contoso-heatpump-088",
      sha1Thumbprint: "A".repeat(40),
      sha256Thumbprint: "B".repeat(64),
      issuerName: "CN=contoso-heatpump-088",
      notBeforeUtc: "2024-01-01T00:00:00Z",
      notAfterUtc: "2034-01-01T00:00:00Z",
      serialNumber: "01",
      version: 3,
    };
    const enrollment: IndividualEnrollment = {
      registrationId: "contoso-heatpump-088" as RegistrationId,
      deviceId: "heatpump-088",
      attestation: {
        type: "x509",
        x509: { clientCertificates: { primary: { certificate: "-----BEGIN CERTIFICATE-----\nMIIB...", info } } },
      },
      provisioningStatus: "enabled",
      allocationPolicy: "custom",
      customAllocationDefinition: { webhookUrl: "http://127.0.0.1:8080/api/allocate", apiVersion: "2021-10-01" },
      initialTwin: { tags: { site: "a" } },
      etag: '"1"',
      createdDateTimeUtc: "2024-01-01T00:00:00Z",
      lastUpdatedDateTimeUtc: "2024-01-01T00:00:00Z",
    };
    const body = buildAllocationRequest({
      enrollment: { kind: "individual", enrollment },
      registrationId: "contoso-heatpump-088",
      attestation: { x509: { clientCertificate: info } },
      linkedHubs: [HEATPUMPS],
    });
    assert.deepEqual(Object.keys(body), ["individualEnrollment", "deviceRuntimeContext", "linkedHubs"]);
    assert.ok(!JSON.stringify(body).includes("BEGIN CERTIFICATE"), "certificate PEM leaked");
    const individual = body.individualEnrollment as Record<string, unknown>;
    assert.deepEqual(individual.attestation, { type: "x509", x509: { clientCertificates: { primary: { info } } } });
    assert.equal(individual.deviceId, "heatpump-088");
    assert.deepEqual(individual.initialTwin, { tags: { site: "a" } });
    assert.deepEqual(individual.customAllocationDefinition, {
      webhookUrl: "http://127.0.0.1:8080/api/allocate",
      apiVersion: "2021-10-01",
    });
    assert.deepEqual(body.deviceRuntimeContext, {
      registrationId: "contoso-heatpump-088",
      x509: { clientCertificate: info },
    });
  });

  test("masking replaces everything after '?'", () => {
    assert.equal(maskWebhookUrl("https://f.example/api/x?code=abc&clientId=d"), "https://f.example/api/x?****");
    assert.equal(maskWebhookUrl("https://f.example/api/x"), "https://f.example/api/x");
  });

  test("the default retry schedule is 10 retries from 1 s, +9 s each", () => {
    assert.deepEqual(DEFAULT_RETRY_DELAYS_MS, [1000, 10000, 19000, 28000, 37000, 46000, 55000, 64000, 73000, 82000]);
  });
});

describe("the example toaster / heat pump webhook", () => {
  let webhook: Awaited<ReturnType<typeof startExampleWebhook>>;
  const definition = (): { webhookUrl: string; apiVersion: string } => ({
    webhookUrl: `${webhook.url}?code=example-key`,
    apiVersion: "2019-03-31",
  });
  before(async () => {
    webhook = await startExampleWebhook({
      port: 0,
      host: "127.0.0.1",
      toasterMatch: "toasters",
      heatpumpMatch: "heatpumps",
    });
  });
  after(() => webhook.close());

  test("a toaster goes to the last toasters hub with the toaster initial twin, and its payload is echoed", async () => {
    const request = groupRequest("contoso-toaster-007");
    const out = await callAllocationWebhook(definition(), request, LINKED, FAST);
    assert.ok(out.ok, JSON.stringify(out));
    assert.equal(out.iotHubHostName, TOASTERS_2);
    assert.deepEqual(out.initialTwin, {
      tags: { deviceType: "toaster" },
      properties: { desired: { state: "ready", darknessSetting: "medium" } },
    });
    assert.deepEqual(out.payload, { receivedPayload: DEVICE_PAYLOAD, allocatedBy: "example" });
    assert.equal(out.calls.length, 1);
    const call = out.calls[0];
    assert.equal(call?.status, 200);
    assert.equal(call?.url, `${webhook.url}?****`);
    assert.equal(call?.attempt, 1);
    assert.ok(typeof call?.durationMs === "number" && call.durationMs >= 0);
    assert.ok(!Number.isNaN(Date.parse(call?.at ?? "")));
    assert.deepEqual(call?.request, request);
    assert.equal((call?.response as Record<string, unknown> | undefined)?.iotHubHostName, TOASTERS_2);
    // What the webhook received is exactly the request body.
    assert.deepEqual(webhook.requests.at(-1), request);
  });

  test("the how-to's device ids (-contoso-tstrsd-, -contoso-hpsd-) are recognized too", async () => {
    const toaster = await callAllocationWebhook(
      definition(),
      groupRequest("breakroom499-contoso-tstrsd-007"),
      LINKED,
      FAST,
    );
    assert.ok(toaster.ok && toaster.iotHubHostName === TOASTERS_2);
    const heatpump = await callAllocationWebhook(
      definition(),
      groupRequest("mainbuilding167-contoso-hpsd-088"),
      LINKED,
      FAST,
    );
    assert.ok(heatpump.ok && heatpump.iotHubHostName === HEATPUMPS);
  });

  test("a heat pump goes to the heatpumps hub with the heat pump initial twin", async () => {
    const out = await callAllocationWebhook(definition(), groupRequest("contoso-heatpump-088"), LINKED, FAST);
    assert.ok(out.ok, JSON.stringify(out));
    assert.equal(out.iotHubHostName, HEATPUMPS);
    assert.deepEqual(out.initialTwin, {
      tags: { deviceType: "heatpump" },
      properties: { desired: { state: "on", temperatureSetting: "65" } },
    });
  });

  test("an unrecognized device fails with 400207 quoting the function's text, without retrying", async () => {
    const out = await callAllocationWebhook(definition(), groupRequest("contoso-fridge-001"), LINKED, FAST);
    const error = errorOf(out);
    assert.equal(error.errorCode, 400207);
    assert.equal(error.status, 400);
    assert.match(error.message, /^Custom allocation failed with status code: 400\b/);
    assert.match(error.message, /Unrecognized device registration\./);
    assert.equal(out.calls.length, 1);
    assert.equal(out.calls[0]?.status, 400);
    assert.equal(out.calls[0]?.response, "Unrecognized device registration.");
  });

  test("a heat pump whose enrollment links only toaster hubs fails: no heat pumps hub", async () => {
    const hubs = [TOASTERS_1];
    const out = await callAllocationWebhook(definition(), groupRequest("contoso-heatpump-088", hubs), hubs, FAST);
    assert.match(errorOf(out).message, /status code: 400\. .*No heat pumps hub found for the enrollment\./);
  });

  test("the function's own checks: no registration id, no linkedHubs", async () => {
    const noId = await callAllocationWebhook(
      definition(),
      { deviceRuntimeContext: {}, linkedHubs: LINKED },
      LINKED,
      FAST,
    );
    assert.match(errorOf(noId).message, /Registration ID not provided for the device\./);
    const noHubs = await callAllocationWebhook(
      definition(),
      { deviceRuntimeContext: { registrationId: "contoso-toaster-007" } },
      LINKED,
      FAST,
    );
    assert.match(errorOf(noHubs).message, /No hub group defined for the enrollment\./);
  });

  test("with a function key configured, a call without it is 401 → 400209", async () => {
    const keyed = await startExampleWebhook({ code: "right-key" });
    try {
      const wrong = await callAllocationWebhook(
        { webhookUrl: `${keyed.url}?code=wrong`, apiVersion: "2019-03-31" },
        groupRequest("contoso-toaster-007"),
        LINKED,
        FAST,
      );
      const error = errorOf(wrong);
      assert.equal(error.errorCode, 400209);
      assert.equal(error.errorName, "customAllocationUnauthorized");
      assert.match(error.message, /status code: 401.*function key/);
      assert.equal(wrong.calls.length, 1, "401 is not retried");
      const right = await callAllocationWebhook(
        { webhookUrl: `${keyed.url}?code=right-key`, apiVersion: "2019-03-31" },
        groupRequest("contoso-toaster-007"),
        LINKED,
        FAST,
      );
      assert.ok(right.ok);
    } finally {
      await keyed.close();
    }
  });
});

describe("webhook answers → registration outcome", () => {
  const definitionFor = (url: string) => ({ webhookUrl: url, apiVersion: "2021-10-01" });

  test("200 without iotHubHostName (missing, null or empty) → 400208", async () => {
    for (const answer of [
      json(200, {}),
      json(200, { iotHubHostName: null }),
      json(200, { iotHubHostName: "" }),
      text(200, ""),
    ]) {
      const hook = await scriptedWebhook([answer]);
      try {
        const out = await callAllocationWebhook(definitionFor(hook.url), groupRequest("d1"), LINKED, FAST);
        const error = errorOf(out);
        assert.equal(error.errorCode, 400208);
        assert.match(error.message, /named no IoT hub/);
        assert.equal(hook.hits(), 1);
      } finally {
        await hook.close();
      }
    }
  });

  test("401 → 400209", async () => {
    const hook = await scriptedWebhook([text(401, "")]);
    try {
      const out = await callAllocationWebhook(definitionFor(hook.url), groupRequest("d1"), LINKED, FAST);
      assert.equal(errorOf(out).errorCode, 400209);
      assert.equal(out.calls[0]?.status, 401);
    } finally {
      await hook.close();
    }
  });

  test("a hub that is not linked → 400207 naming it", async () => {
    const hook = await scriptedWebhook([json(200, { iotHubHostName: "rogue-hub.azure-devices.net" })]);
    try {
      const out = await callAllocationWebhook(definitionFor(hook.url), groupRequest("d1"), LINKED, FAST);
      const error = errorOf(out);
      assert.equal(error.errorCode, 400207);
      assert.match(error.message, /names hub rogue-hub\.azure-devices\.net, which is not linked/);
      assert.equal(hook.hits(), 1);
    } finally {
      await hook.close();
    }
  });

  test("property names and hub names are matched case-insensitively; the linked spelling is returned", async () => {
    const hook = await scriptedWebhook([
      json(200, {
        iothubhostname: TOASTERS_1.toUpperCase(),
        InitialTwin: { Tags: { deviceType: "toaster" }, Properties: { Desired: { state: "ready" } } },
        PAYLOAD: { hello: "device" },
      }),
    ]);
    try {
      const out = await callAllocationWebhook(definitionFor(hook.url), groupRequest("d1"), LINKED, FAST);
      assert.ok(out.ok, JSON.stringify(out));
      assert.equal(out.iotHubHostName, TOASTERS_1);
      assert.deepEqual(out.initialTwin, {
        tags: { deviceType: "toaster" },
        properties: { desired: { state: "ready" } },
      });
      assert.deepEqual(out.payload, { hello: "device" });
    } finally {
      await hook.close();
    }
  });

  test("500 then 200 → retried and assigned; both calls recorded", async () => {
    const hook = await scriptedWebhook([text(500, "cold start"), json(200, { iotHubHostName: HEATPUMPS })]);
    try {
      const out = await callAllocationWebhook(definitionFor(hook.url), groupRequest("d1"), LINKED, FAST);
      assert.ok(out.ok, JSON.stringify(out));
      assert.equal(out.iotHubHostName, HEATPUMPS);
      assert.deepEqual(
        out.calls.map((c) => [c.attempt, c.status, c.response]),
        [
          [1, 500, "cold start"],
          [2, 200, { iotHubHostName: HEATPUMPS }],
        ],
      );
      assert.ok(out.calls.every((c) => c.durationMs >= 0 && c.url.endsWith("?****")));
    } finally {
      await hook.close();
    }
  });

  test("429 / 503 every time → retried per schedule, then 400207 with the last status", async () => {
    const hook = await scriptedWebhook([text(429, "slow down"), text(503, "Service Unavailable")]);
    try {
      const started = Date.now();
      const out = await callAllocationWebhook(definitionFor(hook.url), groupRequest("d1"), LINKED, {
        timeoutMs: 2000,
        retryDelaysMs: [10, 20, 30],
      });
      const error = errorOf(out);
      assert.equal(error.errorCode, 400207);
      assert.match(
        error.message,
        /^Custom allocation failed with status code: 503\. .*4 attempts.*Service Unavailable/,
      );
      assert.equal(hook.hits(), 4);
      assert.deepEqual(
        out.calls.map((c) => c.status),
        [429, 503, 503, 503],
      );
      assert.ok(Date.now() - started >= 60, "waited between retries");
    } finally {
      await hook.close();
    }
  });

  test("other statuses (404, 302) fail at once with 400207", async () => {
    for (const status of [404, 302]) {
      const hook = await scriptedWebhook([text(status, "nope")]);
      try {
        const out = await callAllocationWebhook(definitionFor(hook.url), groupRequest("d1"), LINKED, FAST);
        assert.match(
          errorOf(out).message,
          new RegExp(`^Custom allocation failed with status code: ${status}\\. .*nope`),
        );
        assert.equal(hook.hits(), 1);
      } finally {
        await hook.close();
      }
    }
  });

  test("a webhook slower than the timeout is retried, then fails with 400207, quickly", async () => {
    const hook = await scriptedWebhook([
      (_req, res) => {
        const t = setTimeout(() => json(200, { iotHubHostName: TOASTERS_1 })(_req, res), 5000);
        res.on("close", () => clearTimeout(t));
      },
    ]);
    try {
      const started = Date.now();
      const out = await callAllocationWebhook(definitionFor(hook.url), groupRequest("d1"), LINKED, {
        timeoutMs: 200,
        retryDelaysMs: [10],
      });
      const elapsed = Date.now() - started;
      const error = errorOf(out);
      assert.equal(error.errorCode, 400207);
      assert.match(error.message, /did not answer within 200 ms \(2 attempts\)/);
      assert.equal(out.calls.length, 2);
      assert.ok(out.calls.every((c) => c.status === undefined && c.error === "no answer within 200 ms"));
      assert.ok(elapsed < 1500, `took ${elapsed} ms`);
    } finally {
      await hook.close();
    }
  });

  test("connection refused → retried, then 400207", async () => {
    const closed = createServer();
    const base = await listen(closed);
    await closeServer(closed);
    const out = await callAllocationWebhook(definitionFor(`${base}/api/x?code=k`), groupRequest("d1"), LINKED, FAST);
    const error = errorOf(out);
    assert.equal(error.errorCode, 400207);
    assert.match(error.message, /could not be reached: .*ECONNREFUSED.*\(3 attempts\)/);
    assert.equal(out.calls.length, 3);
    assert.ok(out.calls.every((c) => c.error?.includes("ECONNREFUSED")));
  });

  test("a response over 96 KB fails with 400207", async () => {
    const hook = await scriptedWebhook([json(200, { iotHubHostName: TOASTERS_1, payload: "x".repeat(100 * 1024) })]);
    try {
      const out = await callAllocationWebhook(definitionFor(hook.url), groupRequest("d1"), LINKED, FAST);
      assert.match(errorOf(out).message, /exceeds the 98304-byte limit/);
      assert.equal(hook.hits(), 1);
    } finally {
      await hook.close();
    }
  });

  test("a 2xx that is not JSON, or a malformed initialTwin, fails with 400207", async () => {
    for (const answer of [text(200, "<html>ok</html>"), json(200, { iotHubHostName: TOASTERS_1, initialTwin: "x" })]) {
      const hook = await scriptedWebhook([answer]);
      try {
        const out = await callAllocationWebhook(definitionFor(hook.url), groupRequest("d1"), LINKED, FAST);
        assert.equal(errorOf(out).errorCode, 400207);
      } finally {
        await hook.close();
      }
    }
  });

  test("an unusable webhook URL fails with 400207 without calling anything", async () => {
    const out = await callAllocationWebhook(
      definitionFor("ftp://example.com/x?code=k"),
      groupRequest("d1"),
      LINKED,
      FAST,
    );
    assert.match(errorOf(out).message, /not a valid http\(s\) URL/);
    assert.equal(out.calls[0]?.url, "ftp://example.com/x?****");
  });

  test("an aborted signal stops retrying at once", async () => {
    const hook = await scriptedWebhook([text(503, "busy")]);
    try {
      const controller = new AbortController();
      const started = Date.now();
      const pending = callAllocationWebhook(definitionFor(hook.url), groupRequest("d1"), LINKED, {
        timeoutMs: 2000,
        retryDelaysMs: [5000],
        signal: controller.signal,
      });
      setTimeout(() => controller.abort(), 100);
      const out = await pending;
      assert.match(errorOf(out).message, /cancelled/);
      assert.ok(Date.now() - started < 2000);
    } finally {
      await hook.close();
    }
  });

  test("an https webhook is trusted through the ca option", async () => {
    const dir = mkdtempSync(join(tmpdir(), "provisio-webhook-"));
    try {
      const tls = await ensureTlsMaterial(dir, { dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
      const server = createHttpsServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
        req.resume();
        req.on("end", () => json(200, { iotHubHostName: TOASTERS_1 })(req, res));
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      const url = `https://localhost:${(server.address() as AddressInfo).port}/api/x?code=k`;
      try {
        const untrusted = await callAllocationWebhook(definitionFor(url), groupRequest("d1"), LINKED, {
          timeoutMs: 2000,
          retryDelaysMs: [],
        });
        assert.equal(errorOf(untrusted).errorCode, 400207);
        const trusted = await callAllocationWebhook(definitionFor(url), groupRequest("d1"), LINKED, {
          ...FAST,
          ca: tls.caPem,
        });
        assert.ok(trusted.ok, JSON.stringify(trusted));
      } finally {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
