// The console's pure parts, without a browser: SAS signing with WebCrypto, error messages, the
// enrollment form and its DPS body, per-minute counts, and which requests the console answers.
import assert from "node:assert/strict";
import type { IncomingMessage } from "node:http";
import { describe, test } from "node:test";
import { createSasToken, parseSasToken, signatureMatches } from "../../src/attestation/sas-token.js";
import { Api, ApiError, errorMessage, readConnectionString, sasCredentials } from "../../src/console/app/api.js";
import { bodyToForm, emptyForm, formProblems, formToBody } from "../../src/console/app/enrollment-model.js";
import { authorizeUrl, codeChallenge, randomToken, redirectResult, tokenRequest } from "../../src/console/app/pkce.js";
import { sasToken } from "../../src/console/app/sas.js";
import { type DiagnosticLine, perMinute, recentFailures } from "../../src/console/app/time-series.js";
import { isConsoleRequest } from "../../src/console/console-site.js";
import { keepPrefixed, prefixedPage } from "../../src/http/paging.js";
import { parseRequestPath } from "../../src/http/request-path.js";

const KEY = Buffer.alloc(32, 7).toString("base64");

describe("console: SAS tokens signed with WebCrypto", () => {
  test("the same token as the server's signer, and it verifies", async () => {
    const token = await sasToken("LocalHost", "owner", KEY, 1_900_000_000);
    assert.equal(token, createSasToken(KEY, "localhost", 1_900_000_000, "owner"));
    const parsed = parseSasToken(token);
    assert.ok(parsed && signatureMatches(parsed, [KEY]));
  });
});

describe("console: sign-in through an issuer (authorization code with PKCE)", () => {
  const client = { clientId: "console", scope: "openid profile", redirectUri: "https://localhost:8443/" };

  test("the S256 challenge of RFC 7636's example, and the requests built from it", async () => {
    assert.equal(
      await codeChallenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
      "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    );
    assert.match(randomToken(), /^[A-Za-z0-9_-]{43}$/);
    const url = new URL(authorizeUrl("https://issuer.test/authorize?tenant=x", client, "st", "ch"));
    assert.deepEqual(Object.fromEntries(url.searchParams), {
      tenant: "x",
      response_type: "code",
      client_id: "console",
      redirect_uri: "https://localhost:8443/",
      scope: "openid profile",
      state: "st",
      code_challenge: "ch",
      code_challenge_method: "S256",
    });
    assert.equal(
      tokenRequest(client, "c0de", "v").toString(),
      "grant_type=authorization_code&code=c0de&redirect_uri=https%3A%2F%2Flocalhost%3A8443%2F&client_id=console&code_verifier=v",
    );
  });

  test("the redirect back: a code for this tab, the issuer's refusal, or someone else's answer", () => {
    assert.deepEqual(redirectResult(new URLSearchParams("code=abc&state=s1"), "s1"), { code: "abc" });
    assert.equal(redirectResult(new URLSearchParams(""), "s1"), undefined);
    assert.match(
      (
        redirectResult(new URLSearchParams("error=access_denied&error_description=No+roles&state=s1"), "s1") as {
          error: string;
        }
      ).error,
      /refused the sign-in: No roles/,
    );
    assert.match(
      (redirectResult(new URLSearchParams("code=abc&state=other"), "s1") as { error: string }).error,
      /does not belong to this tab/,
    );
  });
});

describe("console: the connection string a person pastes", () => {
  test("accepted, and refused with a reason", () => {
    assert.equal(readConnectionString(` HostName=h;SharedAccessKeyName=p;SharedAccessKey=${KEY} `).keyName, "p");
    assert.throws(() => readConnectionString(""), /Paste a service connection string/);
    assert.throws(() => readConnectionString("hello"), /not a service connection string/);
    assert.throws(
      () => readConnectionString("HostName=h;SharedAccessKeyName=p;SharedAccessKey=abc"),
      /not a whole base64 key/,
    );
  });
});

describe("console: API replies", () => {
  const reply = (status: number, body: unknown, headers: Record<string, string> = {}) =>
    new Response(body === undefined ? null : JSON.stringify(body), { status, headers });

  test("signs each call, sends the paging headers and reads the continuation", async () => {
    const seen: { url: string; init: RequestInit }[] = [];
    const api = new Api(
      sasCredentials(readConnectionString(`HostName=localhost;SharedAccessKeyName=p;SharedAccessKey=${KEY}`)),
      "",
      async (url, init) => {
        seen.push({ url: String(url), init: init ?? {} });
        return reply(200, [{ registrationId: "a" }], { "x-ms-continuation": "next-token" });
      },
    );
    const page = await api.page("/enrollments/query", 20, "tok", "ab");
    assert.deepEqual(page, { items: [{ registrationId: "a" }], next: "next-token" });
    const [call] = seen;
    assert.ok(call);
    assert.match(call.url, /^\/enrollments\/query\?api-version=2021-10-01&prefix=ab$/);
    const headers = call.init.headers as Record<string, string>;
    assert.equal(headers["x-ms-max-item-count"], "20");
    assert.equal(headers["x-ms-continuation"], "tok");
    assert.match(headers.Authorization ?? "", /^SharedAccessSignature sr=localhost&sig=.+&se=\d+&skn=p$/);
  });

  test("a refusal carries DPS's message, its code and what to do", async () => {
    const api = new Api(
      sasCredentials(readConnectionString(`HostName=h;SharedAccessKeyName=p;SharedAccessKey=${KEY}`)),
      "",
      async () => reply(412, { errorCode: 412002, message: "The etag does not match." }),
    );
    const err = await api.get("/enrollments/x").catch((e: unknown) => e);
    assert.ok(err instanceof ApiError);
    assert.equal(err.status, 412);
    assert.equal(err.errorCode, 412002);
    assert.match(err.message, /^The etag does not match\. Someone changed it since it was read/);
  });

  test("ARM error bodies and empty bodies still say something", () => {
    assert.equal(errorMessage(400, { error: { code: "X", message: "Bad name." } }).message, "Bad name.");
    assert.match(errorMessage(502, undefined).message, /answered 502/);
  });

  test("a service that does not answer", async () => {
    const api = new Api(
      sasCredentials(readConnectionString(`HostName=h;SharedAccessKeyName=p;SharedAccessKey=${KEY}`)),
      "",
      async () => {
        throw new TypeError("fetch failed");
      },
    );
    await assert.rejects(api.get("/caller"), /did not answer/);
  });
});

describe("console: the enrollment form", () => {
  test("a new symmetric-key enrollment: generated keys, twin, static hub, no reprovisioning", () => {
    const f = {
      ...emptyForm("individual"),
      id: "dev-1",
      deviceId: "device-one",
      initialTwin: '{"tags":{"site":"a"}}',
      allocationPolicy: "static" as const,
      iotHubs: ["hub-1.localhost"],
      reprovision: "never" as const,
      iotEdge: true,
    };
    assert.deepEqual(formProblems(f), {});
    assert.deepEqual(formToBody(f), {
      registrationId: "dev-1",
      deviceId: "device-one",
      attestation: { type: "symmetricKey", symmetricKey: {} },
      capabilities: { iotEdge: true },
      provisioningStatus: "enabled",
      reprovisionPolicy: { updateHubAssignment: false, migrateDeviceData: false },
      initialTwin: { tags: { site: "a" } },
      allocationPolicy: "static",
      iotHubs: ["hub-1.localhost"],
    });
  });

  test("problems are named field by field", () => {
    const p = formProblems({
      ...emptyForm("group"),
      id: "bad id",
      attestation: "x509",
      initialTwin: "{",
      allocationPolicy: "custom",
      primaryKey: "short",
    });
    assert.match(p.id ?? "", /Group ID/);
    assert.match(p.primaryCertificate ?? "", /signing certificate/);
    assert.match(p.initialTwin ?? "", /Not JSON/);
    assert.match(p.webhookUrl ?? "", /webhook URL/);
    assert.equal(p.primaryKey, undefined, "keys are not read for X.509");
    assert.match(formProblems({ ...emptyForm("group"), id: "g", attestation: "tpm" }).attestation ?? "", /TPM/);
    assert.match(formProblems({ ...emptyForm("individual"), id: "d", primaryKey: "abc" }).primaryKey ?? "", /Base64/);
  });

  test("a group by CA name, and a stored group read back into the form and out again", () => {
    const byCa = formToBody({ ...emptyForm("group"), id: "g1", attestation: "x509", caName: "root" });
    assert.deepEqual(byCa.attestation, { type: "x509", x509: { caReferences: { primary: "root" } } });
    const stored = {
      enrollmentGroupId: "g1",
      attestation: { type: "symmetricKey" },
      provisioningStatus: "disabled",
      reprovisionPolicy: { updateHubAssignment: true, migrateDeviceData: false },
      allocationPolicy: "custom",
      customAllocationDefinition: { webhookUrl: "https://example.test/a", apiVersion: "2019-03-31" },
      iotHubs: ["a", "b"],
      initialTwin: { properties: { desired: { x: 1 } } },
      etag: "e1",
    };
    const keys = { type: "symmetricKey", symmetricKey: { primaryKey: KEY, secondaryKey: KEY } };
    const form = bodyToForm("group", stored, keys);
    assert.equal(form.enabled, false);
    assert.equal(form.reprovision, "reprovisionandresetdata");
    assert.equal(form.primaryKey, KEY, "saving keeps the keys");
    assert.deepEqual(formToBody(form), {
      enrollmentGroupId: "g1",
      attestation: { type: "symmetricKey", symmetricKey: { primaryKey: KEY, secondaryKey: KEY } },
      capabilities: { iotEdge: false },
      provisioningStatus: "disabled",
      reprovisionPolicy: { updateHubAssignment: true, migrateDeviceData: false },
      initialTwin: { properties: { desired: { x: 1 } } },
      allocationPolicy: "custom",
      iotHubs: ["a", "b"],
      customAllocationDefinition: { webhookUrl: "https://example.test/a", apiVersion: "2019-03-31" },
      etag: "e1",
    });
  });
});

describe("console: charts from the diagnostic log", () => {
  const line = (at: string, result: DiagnosticLine["ResultType"], ms = "10"): DiagnosticLine => ({
    Category: "DeviceOperations",
    OperationName: "Register",
    ResultType: result,
    ResultSignature: result === "Success" ? "200" : "401",
    ResultDescription: "",
    DurationMs: ms,
    TimeGenerated: at,
    properties: { id: "d", type: "Registration" },
  });

  test("counted per minute, failures newest first", () => {
    const now = Date.parse("2026-12-03T10:05:30Z");
    const lines = [
      line("2026-12-03T10:03:10Z", "Success", "10"),
      line("2026-12-03T10:03:50Z", "ClientError", "30"),
      line("2026-12-03T10:05:01Z", "Success"),
      line("2026-12-03T09:00:00Z", "Success"), // before the window
    ];
    const b = perMinute(lines, "DeviceOperations", 3, now);
    assert.deepEqual(
      b.map((x) => [new Date(x.at).toISOString().slice(11, 16), x.success, x.failed, x.meanMs]),
      [
        ["10:03", 1, 1, 20],
        ["10:04", 0, 0, 0],
        ["10:05", 1, 0, 10],
      ],
    );
    assert.deepEqual(
      recentFailures(lines, "DeviceOperations", 5).map((l) => l.TimeGenerated),
      ["2026-12-03T10:03:50Z"],
    );
  });
});

describe("console: search by prefix on the server", () => {
  test("the page starts just before the prefix and ends at the first id without it", () => {
    const from = prefixedPage({ limit: 10 }, "Dev-1");
    assert.ok(from.after !== undefined && from.after < "dev-1" && from.after > "dev-0zzzz");
    assert.equal(prefixedPage({ limit: 10, after: "dev-15" }, "dev-1").after, "dev-15", "a later page goes on");
    assert.deepEqual(prefixedPage({ limit: 10 }, undefined), { limit: 10 });
    const ids = (items: string[], next?: string) =>
      keepPrefixed({ items, ...(next ? { next } : {}) }, "dev-1", (s) => s);
    assert.deepEqual(ids(["dev-1", "Dev-10"], "Dev-10"), { items: ["dev-1", "Dev-10"], next: "Dev-10" });
    assert.deepEqual(ids(["dev-19", "dev-2"], "dev-2"), { items: ["dev-19"] });
  });
});

describe("console: which requests it answers", () => {
  const req = (method: string, accept?: string) =>
    ({ method, headers: accept ? { accept } : {} }) as unknown as IncomingMessage;
  test("a browser at / and the console's files; nothing else", () => {
    assert.equal(isConsoleRequest(req("GET", "text/html,application/xhtml+xml"), parseRequestPath("/")), true);
    assert.equal(isConsoleRequest(req("GET", "application/json"), parseRequestPath("/")), false);
    assert.equal(isConsoleRequest(req("GET"), parseRequestPath("/console/app.js")), true);
    assert.equal(isConsoleRequest(req("POST", "text/html"), parseRequestPath("/")), false);
    assert.equal(isConsoleRequest(req("GET", "text/html"), parseRequestPath("/enrollments")), false);
    assert.equal(isConsoleRequest(req("GET"), parseRequestPath("/console/../tls/ca.pem")), false);
  });
});
