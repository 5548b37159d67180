// Bad input against a real `provisio serve` over TLS, one raw HTTPS request at a time: malformed
// and mistyped bodies, invalid ids, oversized bodies, broken or foreign SAS tokens, odd routes,
// If-Match edge cases, query headers and bulk requests (service-api.md §1-3, §6, §8, §9, §11).
// Every refusal must be a DPS error body (§8) that a person can act on, and a refused write
// must leave the store as it was.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { request } from "node:https";
import { after, before, describe, test } from "node:test";
import { createSasToken, sign } from "../../src/attestation/sas-token.js";
import { parseConnectionString, type SharedAccessConnectionString } from "../../src/domain/connection-string.js";
import type { ErrorBody } from "../../src/domain/errors.js";
import { addPolicy, call, type HttpReply } from "../support/management.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";

const API = "?api-version=2021-10-01";
const LIMIT = 96 * 1024;

type Json = Record<string, unknown>;
type Kind = "enrollment" | "group";

const enrollmentPath = (id: string, suffix = ""): string => `/enrollments/${encodeURIComponent(id)}${suffix}${API}`;
const groupPath = (id: string, suffix = ""): string => `/enrollmentGroups/${encodeURIComponent(id)}${suffix}${API}`;
const pathOf = (kind: Kind, id: string, suffix = ""): string =>
  kind === "enrollment" ? enrollmentPath(id, suffix) : groupPath(id, suffix);

const symmetric = (registrationId: string, extra: Json = {}): Json => ({
  registrationId,
  attestation: { type: "symmetricKey" },
  ...extra,
});
const symmetricGroup = (enrollmentGroupId: string, extra: Json = {}): Json => ({
  enrollmentGroupId,
  attestation: { type: "symmetricKey" },
  ...extra,
});
const keyOf = (bytes: number, fill = 1): string => Buffer.alloc(bytes, fill).toString("base64");
const withKeys = (primaryKey: unknown, secondaryKey: unknown = keyOf(32)): Json => ({
  type: "symmetricKey",
  symmetricKey: { primaryKey, secondaryKey },
});

const nowSeconds = (): number => Math.floor(Date.now() / 1000);

// Every error reply carries a fresh tracking id.
const trackingIds = new Set<string>();

/** The reply is the DPS error `code` (service-api.md §8) and its message mentions each of `mentions`. */
function assertError(r: HttpReply, status: number, code: number, mentions: RegExp[] = []): ErrorBody {
  const where = `${r.status} ${r.headers["content-type"]} ${r.text}`;
  assert.equal(r.status, status, where);
  assert.match(String(code), /^[1-5]\d{5}$/, "a 6-digit error code");
  assert.equal(Math.floor(code / 1000), status, "the code is status × 1000 + detail");
  assert.match(String(r.headers["content-type"]), /application\/json/, where);
  assert.equal(r.headers["x-ms-error-code"], String(code), where);
  const body = r.json() as Partial<ErrorBody>;
  assert.equal(body.errorCode, code, where);
  assert.equal(typeof body.trackingId, "string", where);
  assert.ok((body.trackingId ?? "").length >= 8, where);
  assert.ok(!trackingIds.has(body.trackingId as string), `tracking id reused: ${body.trackingId}`);
  trackingIds.add(body.trackingId as string);
  assert.equal(typeof body.message, "string", where);
  assert.ok((body.message ?? "").trim().length > 10, `message too thin: ${where}`);
  for (const m of mentions) assert.match(body.message as string, m, `message should mention ${m}: ${where}`);
  assert.equal(typeof body.timestampUtc, "string", where);
  assert.match(body.timestampUtc as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/, where);
  assert.ok(Math.abs(Date.parse(body.timestampUtc as string) - Date.now()) < 5 * 60_000, where);
  return body as ErrorBody;
}

function assertOk(r: HttpReply, status = 200): void {
  assert.equal(r.status, status, `${r.status} ${r.text}`);
}

describe("service API: bad input gets DPS errors and changes nothing", () => {
  let p: ProvisioProcess;
  let cs: SharedAccessConnectionString;

  before(async () => {
    p = await startProvisio();
    const parsed = parseConnectionString(p.info.serviceConnectionString);
    assert.ok(parsed, "provisio.json has a service connection string");
    cs = parsed;
  });
  after(async () => {
    await p?.dispose();
  });

  const send = (method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<HttpReply> =>
    call(p, method, path, {
      ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
      ...(headers ? { headers } : {}),
    });

  const get = (kind: Kind, id: string): Promise<HttpReply> => send("GET", pathOf(kind, id));

  /** GET finds nothing under `id`. */
  async function assertNotStored(kind: Kind, id: string): Promise<void> {
    const r = await get(kind, id);
    if (r.status === 400) {
      // An id outside DPS's rules is refused before any lookup (issue 15.2): look in the listing.
      const listed = await query(
        kind === "enrollment" ? "enrollments" : "enrollmentGroups",
        { query: "*" },
        {
          "x-ms-max-item-count": "1000",
        },
      );
      assertOk(listed);
      const idField = kind === "enrollment" ? "registrationId" : "enrollmentGroupId";
      const ids = (listed.json() as Json[]).map((e) => String(e[idField]).toLowerCase());
      assert.ok(!ids.includes(id.toLowerCase()), `${id} is not listed`);
      return;
    }
    assertError(r, 404, kind === "enrollment" ? 404201 : 404203);
  }

  /** GET and attestationmechanism of `id`, to compare before and after a refused write. */
  async function snapshot(kind: Kind, id: string): Promise<{ record: Json; mechanism: Json }> {
    const g = await get(kind, id);
    assertOk(g);
    const m = await send("POST", pathOf(kind, id, "/attestationmechanism"));
    assertOk(m);
    return { record: g.json() as Json, mechanism: m.json() as Json };
  }

  const query = (collection: string, body: unknown = { query: "*" }, headers?: Record<string, string>) =>
    send("POST", `/${collection}/query${API}`, body, headers);

  /** A token signed with the service key, built field by field. */
  const token = (fields: { sr?: string; se?: number; skn?: string; key?: string }): string =>
    createSasToken(
      fields.key ?? cs.key,
      fields.sr ?? cs.hostName,
      fields.se ?? nowSeconds() + 3600,
      fields.skn ?? cs.keyName,
    );

  // --- Malformed bodies ---------------------------------------------------------------------

  test("malformed JSON on PUT enrollment is 400001 and writes nothing", async () => {
    const r = await send("PUT", enrollmentPath("bad-json-1"), '{"registrationId":"bad-json-1","attestation":{');
    assertError(r, 400, 400001, [/JSON/]);
    await assertNotStored("enrollment", "bad-json-1");
  });

  test("malformed JSON on PUT enrollment group is 400001 and writes nothing", async () => {
    const r = await send("PUT", groupPath("bad-json-g"), "{'enrollmentGroupId': 'bad-json-g'}");
    assertError(r, 400, 400001, [/JSON/]);
    await assertNotStored("group", "bad-json-g");
  });

  test("malformed JSON on bulk is 400001 and writes nothing", async () => {
    const r = await send(
      "POST",
      `/enrollments/${API}`,
      '{"mode":"create","enrollments":[{"registrationId":"bulk-json-1","attestation":{"type":"symmetricKey"}}',
    );
    assertError(r, 400, 400001, [/JSON/]);
    await assertNotStored("enrollment", "bulk-json-1");
  });

  test("malformed JSON on a query is 400001", async () => {
    assertError(await query("enrollments", '{"query": "*"'), 400, 400001, [/JSON/]);
    assertError(await query("enrollmentGroups", "query=*"), 400, 400001, [/JSON/]);
    assertError(await send("POST", `/registrations/some-group/query${API}`, "{"), 400, 400001, [/JSON/]);
  });

  for (const [what, raw] of [
    ["a JSON array", JSON.stringify([symmetric("shape-1")])],
    ["a JSON string", JSON.stringify("shape-1")],
    ["a JSON number", "42"],
    ["null", "null"],
    ["empty", ""],
  ] as const) {
    test(`a PUT enrollment body that is ${what} instead of an object is 400004 and writes nothing`, async () => {
      const r = await send("PUT", enrollmentPath("shape-1"), raw);
      assertError(r, 400, 400004, [/JSON object/]);
      await assertNotStored("enrollment", "shape-1");
    });
  }

  test("a PUT enrollment group body that is a JSON array is 400004 and writes nothing", async () => {
    const r = await send("PUT", groupPath("shape-g"), JSON.stringify([symmetricGroup("shape-g")]));
    assertError(r, 400, 400004, [/JSON object/]);
    await assertNotStored("group", "shape-g");
  });

  // --- Wrong types and invalid values (400004) ---------------------------------------------

  const wrongTypes: { name: string; id: string; body: Json; mentions: RegExp[] }[] = [
    {
      name: "registrationId a number",
      id: "12345",
      body: symmetric("x", { registrationId: 12345 }),
      mentions: [/'registrationId' must be a string/],
    },
    {
      name: "registrationId missing",
      id: "no-id",
      body: { attestation: { type: "symmetricKey" } },
      mentions: [/'registrationId' is required/],
    },
    {
      name: "provisioningStatus 'maybe'",
      id: "wt-status",
      body: symmetric("wt-status", { provisioningStatus: "maybe" }),
      mentions: [/provisioningStatus/, /enabled/, /disabled/],
    },
    {
      name: "capabilities.iotEdge 'yes'",
      id: "wt-edge",
      body: symmetric("wt-edge", { capabilities: { iotEdge: "yes" } }),
      mentions: [/capabilities\.iotEdge/, /true or false/],
    },
    {
      name: "capabilities a string",
      id: "wt-caps",
      body: symmetric("wt-caps", { capabilities: "edge" }),
      mentions: [/capabilities/, /object/],
    },
    {
      name: "iotHubs not an array",
      id: "wt-hubs",
      body: symmetric("wt-hubs", { iotHubs: "hub-1.localhost" }),
      mentions: [/iotHubs/, /array/],
    },
    {
      name: "iotHubs with a number",
      id: "wt-hubs-2",
      body: symmetric("wt-hubs-2", { iotHubs: ["hub-1.localhost", 7] }),
      mentions: [/iotHubs/],
    },
    {
      name: "initialTwin.tags an array",
      id: "wt-tags",
      body: symmetric("wt-tags", { initialTwin: { tags: ["a", "b"] } }),
      mentions: [/initialTwin\.tags/, /object/],
    },
    {
      name: "initialTwin.properties.desired a string",
      id: "wt-desired",
      body: symmetric("wt-desired", { initialTwin: { properties: { desired: "on" } } }),
      mentions: [/initialTwin\.properties\.desired/],
    },
    {
      name: "reprovisionPolicy.updateHubAssignment 'yes'",
      id: "wt-reprov",
      body: symmetric("wt-reprov", { reprovisionPolicy: { updateHubAssignment: "yes", migrateDeviceData: true } }),
      mentions: [/reprovisionPolicy\.updateHubAssignment/, /true or false/],
    },
    {
      name: "reprovisionPolicy.migrateDeviceData 1",
      id: "wt-reprov-2",
      body: symmetric("wt-reprov-2", { reprovisionPolicy: { updateHubAssignment: true, migrateDeviceData: 1 } }),
      mentions: [/reprovisionPolicy\.migrateDeviceData/],
    },
    {
      name: "allocationPolicy 'random'",
      id: "wt-alloc",
      body: symmetric("wt-alloc", { allocationPolicy: "random" }),
      mentions: [/allocationPolicy/, /hashed/, /geoLatency/, /static/, /custom/],
    },
    {
      name: "allocationPolicy custom without customAllocationDefinition",
      id: "wt-custom",
      body: symmetric("wt-custom", { allocationPolicy: "custom" }),
      mentions: [/custom/, /customAllocationDefinition/],
    },
    {
      name: "customAllocationDefinition without a webhook URL",
      id: "wt-custom-2",
      body: symmetric("wt-custom-2", {
        allocationPolicy: "custom",
        customAllocationDefinition: { webhookUrl: "not a url", apiVersion: "2021-10-01" },
      }),
      mentions: [/webhookUrl/],
    },
    {
      name: "allocationPolicy static with two hubs",
      id: "wt-static",
      body: symmetric("wt-static", { allocationPolicy: "static", iotHubs: ["hub-1.localhost", "hub-2.localhost"] }),
      mentions: [/static/, /exactly one hub/, /iotHubs/],
    },
    {
      name: "deviceId with a space",
      id: "wt-device",
      body: symmetric("wt-device", { deviceId: "my device" }),
      mentions: [/deviceId/, /my device/],
    },
  ];
  for (const c of wrongTypes) {
    test(`PUT enrollment with ${c.name} is 400004 and writes nothing`, async () => {
      const r = await send("PUT", enrollmentPath(c.id), c.body);
      assertError(r, 400, 400004, c.mentions);
      await assertNotStored("enrollment", c.id);
    });
  }

  test("PUT enrollment group with allocationPolicy 'random' is 400004 and writes nothing", async () => {
    const r = await send(
      "PUT",
      groupPath("wt-group-alloc"),
      symmetricGroup("wt-group-alloc", { allocationPolicy: "random" }),
    );
    assertError(r, 400, 400004, [/allocationPolicy/]);
    await assertNotStored("group", "wt-group-alloc");
  });

  // --- Attestation (400008) ------------------------------------------------------------------

  const badAttestations: { name: string; kind: Kind; id: string; attestation: unknown; mentions: RegExp[] }[] = [
    {
      name: "missing attestation",
      kind: "enrollment",
      id: "att-missing",
      attestation: undefined,
      mentions: [/'attestation' is required/],
    },
    {
      name: "attestation a string",
      kind: "enrollment",
      id: "att-string",
      attestation: "symmetricKey",
      mentions: [/attestation/],
    },
    {
      name: "attestation without a type",
      kind: "enrollment",
      id: "att-notype",
      attestation: { symmetricKey: {} },
      mentions: [/attestation\.type/, /required/],
    },
    {
      name: "attestation.type unknown",
      kind: "enrollment",
      id: "att-unknown",
      attestation: { type: "password" },
      mentions: [/password/, /symmetricKey/, /x509/, /tpm/],
    },
    {
      name: "tpm without endorsementKey",
      kind: "enrollment",
      id: "att-tpm",
      attestation: { type: "tpm", tpm: { storageRootKey: "c3Jr" } },
      mentions: [/tpm\.endorsementKey/, /required/],
    },
    {
      name: "tpm without a tpm object",
      kind: "enrollment",
      id: "att-tpm-2",
      attestation: { type: "tpm" },
      mentions: [/tpm\.endorsementKey/],
    },
    {
      name: "tpm endorsementKey not base64",
      kind: "enrollment",
      id: "att-tpm-3",
      attestation: { type: "tpm", tpm: { endorsementKey: "not base64!" } },
      mentions: [/endorsementKey/, /base64/],
    },
    {
      name: "symmetric primaryKey not base64",
      kind: "enrollment",
      id: "att-b64",
      attestation: withKeys("this is not base64!!"),
      mentions: [/symmetricKey\.primaryKey/, /base64/],
    },
    {
      name: "symmetric secondaryKey a number",
      kind: "enrollment",
      id: "att-num",
      attestation: withKeys(keyOf(32), 12345),
      mentions: [/symmetricKey\.secondaryKey/, /base64/],
    },
    {
      name: "symmetric key too short (15 bytes)",
      kind: "enrollment",
      id: "att-short",
      attestation: withKeys(keyOf(15)),
      mentions: [/symmetricKey\.primaryKey/, /16-64 bytes/, /15/],
    },
    {
      name: "symmetric key too long (65 bytes)",
      kind: "enrollment",
      id: "att-long",
      attestation: withKeys(keyOf(32), keyOf(65)),
      mentions: [/symmetricKey\.secondaryKey/, /16-64 bytes/, /65/],
    },
    {
      name: "x509 certificate garbage",
      kind: "enrollment",
      id: "att-x509",
      attestation: {
        type: "x509",
        x509: {
          clientCertificates: {
            primary: { certificate: "-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----" },
          },
        },
      },
      mentions: [/x509\.clientCertificates\.primary\.certificate/, /X\.509 certificate/],
    },
    {
      name: "x509 certificate base64 garbage",
      kind: "enrollment",
      id: "att-x509-2",
      attestation: { type: "x509", x509: { clientCertificates: { primary: { certificate: "aGVsbG8gd29ybGQ=" } } } },
      mentions: [/certificate/],
    },
    {
      name: "x509 without clientCertificates",
      kind: "enrollment",
      id: "att-x509-3",
      attestation: { type: "x509", x509: {} },
      mentions: [/clientCertificates/],
    },
    {
      name: "tpm",
      kind: "group",
      id: "att-group-tpm",
      attestation: { type: "tpm", tpm: { endorsementKey: "AToAAQALAAMAsgAgg3GXZ0SEs" } },
      mentions: [/TPM/, /symmetricKey/, /x509/],
    },
    {
      name: "symmetric key too short",
      kind: "group",
      id: "att-group-short",
      attestation: withKeys(keyOf(8)),
      mentions: [/symmetricKey\.primaryKey/, /16-64 bytes/],
    },
    {
      name: "x509 certificate garbage",
      kind: "group",
      id: "att-group-x509",
      attestation: { type: "x509", x509: { signingCertificates: { primary: { certificate: "garbage" } } } },
      mentions: [/x509\.signingCertificates\.primary\.certificate/],
    },
    {
      name: "missing attestation",
      kind: "group",
      id: "att-group-missing",
      attestation: undefined,
      mentions: [/'attestation' is required/],
    },
  ];
  for (const c of badAttestations) {
    test(`PUT ${c.kind} with ${c.name} is 400008 and writes nothing`, async () => {
      const idField = c.kind === "enrollment" ? "registrationId" : "enrollmentGroupId";
      const body: Json = { [idField]: c.id, ...(c.attestation === undefined ? {} : { attestation: c.attestation }) };
      const r = await send("PUT", pathOf(c.kind, c.id), body);
      assertError(r, 400, 400008, [/attestation/i, ...c.mentions]);
      await assertNotStored(c.kind, c.id);
    });
  }

  test("symmetric keys of exactly 16 and 64 bytes are accepted and echoed", async () => {
    const r = await send(
      "PUT",
      enrollmentPath("keys-edge"),
      symmetric("keys-edge", { attestation: withKeys(keyOf(16), keyOf(64, 2)) }),
    );
    assertOk(r);
    assert.deepEqual((r.json() as { attestation: Json }).attestation, withKeys(keyOf(16), keyOf(64, 2)));
  });

  // --- Ids -----------------------------------------------------------------------------------

  test("body id different from the path id is 400005 and writes nothing", async () => {
    const r = await send("PUT", enrollmentPath("path-id"), symmetric("body-id"));
    assertError(r, 400, 400005, [/registrationId/, /'body-id'/, /'path-id'/]);
    await assertNotStored("enrollment", "path-id");
    await assertNotStored("enrollment", "body-id");

    const g = await send("PUT", groupPath("path-group"), symmetricGroup("body-group"));
    assertError(g, 400, 400005, [/enrollmentGroupId/, /'body-group'/, /'path-group'/]);
    await assertNotStored("group", "path-group");
    await assertNotStored("group", "body-group");
  });

  test("body id equal to the path id in another case is accepted", async () => {
    const r = await send("PUT", enrollmentPath("case-id"), symmetric("CASE-ID"));
    assertOk(r);
    assert.equal((r.json() as Json).registrationId, "CASE-ID");
  });

  for (const [what, id] of [
    ["characters outside A-Z a-z 0-9 - . _ :", "bad!id"],
    ["a space", "bad id"],
    ["a slash", "bad/id"],
    ["129 characters", "a".repeat(129)],
    ["a trailing '.'", "ends-with-dot."],
    ["a trailing '_'", "ends-with-underscore_"],
    ["a trailing ':'", "ends-with-colon:"],
  ] as const) {
    test(`registration id with ${what} is 400006 and writes nothing`, async () => {
      const r = await send("PUT", enrollmentPath(id), symmetric(id));
      assertError(r, 400, 400006, [/Registration id/, /128/, /A-Z a-z 0-9/]);
      await assertNotStored("enrollment", id);
    });
  }

  test("enrollment group id with a trailing '.' or 129 characters is 400007 and writes nothing", async () => {
    for (const id of ["group-dot.", "g".repeat(129), "group#1"]) {
      const r = await send("PUT", groupPath(id), symmetricGroup(id));
      assertError(r, 400, 400007, [/Enrollment group id/, /128/]);
      await assertNotStored("group", id);
    }
  });

  test("a valid 128-character id works for enrollments and groups", async () => {
    const id = `${"a1-._:".repeat(21)}Z9`;
    assert.equal(id.length, 128);
    const r = await send("PUT", enrollmentPath(id), symmetric(id));
    assertOk(r);
    assert.equal((r.json() as Json).registrationId, id);
    const g = await get("enrollment", id);
    assertOk(g);
    assert.equal((g.json() as Json).registrationId, id);

    const gid = "G".repeat(127).concat("-");
    assertOk(await send("PUT", groupPath(gid), symmetricGroup(gid)));
    const gg = await get("group", gid);
    assertOk(gg);
    assert.equal((gg.json() as Json).enrollmentGroupId, gid);
  });

  // --- A refused PUT on an existing record changes nothing -----------------------------------

  test("a failed PUT on an existing enrollment leaves the stored record unchanged", async () => {
    const id = "keep-me";
    const created = await send(
      "PUT",
      enrollmentPath(id),
      symmetric(id, { attestation: withKeys(keyOf(32, 3), keyOf(32, 4)), initialTwin: { tags: { a: 1 } } }),
    );
    assertOk(created);
    const before = await snapshot("enrollment", id);
    const etag = before.record.etag as string;

    const refusals: [unknown, number][] = [
      [symmetric(id, { attestation: withKeys(keyOf(8, 5)) }), 400008],
      [symmetric(id, { attestation: withKeys("not base64 at all") }), 400008],
      [symmetric(id, { attestation: { type: "tpm" } }), 400008],
      [symmetric(id, { attestation: withKeys(keyOf(32, 6)), provisioningStatus: "maybe" }), 400004],
      [symmetric(id, { attestation: withKeys(keyOf(32, 6)), initialTwin: { tags: [] } }), 400004],
      [symmetric("someone-else", { attestation: withKeys(keyOf(32, 6)) }), 400005],
      [{ ...before.record, registrationId: 5 }, 400004],
    ];
    for (const [body, code] of refusals) {
      assertError(await send("PUT", enrollmentPath(id), body), 400, code);
    }
    assertError(await send("PUT", enrollmentPath(id), "{not json"), 400, 400001);
    // Even with the right etag a refused body writes nothing.
    assertError(
      await send("PUT", enrollmentPath(id), symmetric(id, { attestation: withKeys(keyOf(70)) }), { "if-match": etag }),
      400,
      400008,
    );

    const afterwards = await snapshot("enrollment", id);
    assert.equal(afterwards.record.etag, etag, "same etag");
    assert.deepEqual(afterwards.record, before.record, "same record");
    assert.deepEqual(afterwards.mechanism, withKeys(keyOf(32, 3), keyOf(32, 4)), "same keys");
  });

  test("a failed PUT on an existing enrollment group leaves the stored record unchanged", async () => {
    const id = "keep-group";
    assertOk(await send("PUT", groupPath(id), symmetricGroup(id, { allocationPolicy: "hashed" })));
    const before = await snapshot("group", id);
    assertError(
      await send("PUT", groupPath(id), symmetricGroup(id, { attestation: withKeys(keyOf(100)) })),
      400,
      400008,
    );
    assertError(
      await send(
        "PUT",
        groupPath(id),
        symmetricGroup(id, { attestation: { type: "tpm", tpm: { endorsementKey: "ZWs=" } } }),
      ),
      400,
      400008,
    );
    assertError(await send("PUT", groupPath(id), symmetricGroup(id, { allocationPolicy: "random" })), 400, 400004);
    const afterwards = await snapshot("group", id);
    assert.deepEqual(afterwards, before);
  });

  // --- Size limit ----------------------------------------------------------------------------

  test("a body over 96 KB gets 413001 and writes nothing", async () => {
    const body = JSON.stringify(symmetric("too-big", { initialTwin: { tags: { blob: "x".repeat(100 * 1024) } } }));
    assert.ok(Buffer.byteLength(body) > LIMIT);
    const r = await send("PUT", enrollmentPath("too-big"), body);
    assertError(r, 413, 413001, [new RegExp(`${LIMIT}-byte limit`)]);
    await assertNotStored("enrollment", "too-big");

    const bulk = JSON.stringify({
      mode: "create",
      enrollments: [symmetric("too-big-bulk", { initialTwin: { tags: { blob: "y".repeat(100 * 1024) } } })],
    });
    assertError(await send("POST", `/enrollments/${API}`, bulk), 413, 413001);
    await assertNotStored("enrollment", "too-big-bulk");
  });

  test("a body over 96 KB sent chunked (no Content-Length) gets 413001 and writes nothing", async () => {
    const body = Buffer.from(
      JSON.stringify(symmetric("too-big-chunked", { initialTwin: { tags: { blob: "z".repeat(120 * 1024) } } })),
    );
    const r = await chunkedRequest("PUT", enrollmentPath("too-big-chunked"), body);
    assertError(r, 413, 413001, [/limit/]);
    await assertNotStored("enrollment", "too-big-chunked");
  });

  test("a body just under 96 KB is accepted and stored whole", async () => {
    const shell = JSON.stringify(symmetric("almost-too-big", { initialTwin: { tags: { blob: "" } } }));
    const blob = "q".repeat(LIMIT - 64 - Buffer.byteLength(shell));
    const body = JSON.stringify(symmetric("almost-too-big", { initialTwin: { tags: { blob } } }));
    assert.equal(Buffer.byteLength(body), LIMIT - 64);
    assertOk(await send("PUT", enrollmentPath("almost-too-big"), body));
    const g = await get("enrollment", "almost-too-big");
    assertOk(g);
    assert.equal((g.json() as { initialTwin: { tags: { blob: string } } }).initialTwin.tags.blob, blob);
  });

  // JSON.parse takes any depth, but the record must still be stored and served: refuse it up front.
  const deepArray = (levels: number): string => "[".repeat(levels) + "]".repeat(levels);
  const NESTING_REFUSED = [400001, 400004];

  test("a deeply nested initialTwin or optionalDeviceInformation is a 400, not a 500, and writes nothing", async () => {
    for (const [id, field] of [
      ["deep-twin", '"initialTwin":{"tags":{"x":%}}'],
      ["deep-desired", '"initialTwin":{"properties":{"desired":{"x":%}}}'],
      ["deep-info", '"optionalDeviceInformation":{"x":%}'],
    ] as const) {
      const body = `{"registrationId":"${id}","attestation":{"type":"symmetricKey"},${field.replace("%", deepArray(40_000))}}`;
      assert.ok(Buffer.byteLength(body) < LIMIT);
      const r = await send("PUT", enrollmentPath(id), body);
      const code = (JSON.parse(r.text || "{}") as { errorCode?: number }).errorCode ?? 0;
      assert.ok(NESTING_REFUSED.includes(code), `${id}: expected 400001 or 400004, got ${r.status} ${r.text}`);
      assertError(r, 400, code, [/nest|depth|deep/i]);
      await assertNotStored("enrollment", id);
    }
  });

  test("a bulk item nested too deeply fails without a 500, and the reply matches what was written", async () => {
    const body = `{"mode":"create","enrollments":[${JSON.stringify(symmetric("bulk-deep-first"))},{"registrationId":"bulk-deep","attestation":{"type":"symmetricKey"},"initialTwin":{"tags":{"x":${deepArray(40_000)}}}}]}`;
    const r = await send("POST", `/enrollments/${API}`, body);
    if (r.status === 200) {
      // Per-item failure, like any other invalid item: the first item stands.
      const result = r.json() as { isSuccessful: boolean; errors: Json[] };
      assert.equal(result.isSuccessful, false);
      assert.equal(result.errors.length, 1, r.text);
      assert.equal(result.errors[0]?.registrationId, "bulk-deep");
      assert.ok(NESTING_REFUSED.includes(result.errors[0]?.errorCode as number), r.text);
      assertOk(await get("enrollment", "bulk-deep-first"));
    } else {
      // Whole-request refusal: then nothing at all may have been written.
      const code = (JSON.parse(r.text || "{}") as { errorCode?: number }).errorCode ?? 0;
      assert.ok(NESTING_REFUSED.includes(code), `expected 200 or 400001/400004, got ${r.status} ${r.text}`);
      assertError(r, 400, code, [/nest|depth|deep/i]);
      await assertNotStored("enrollment", "bulk-deep-first");
    }
    await assertNotStored("enrollment", "bulk-deep");
  });

  /** A request whose body goes out chunked, with no Content-Length. */
  function chunkedRequest(method: string, path: string, body: Buffer): Promise<HttpReply> {
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: "127.0.0.1",
          port: p.info.ports.https,
          servername: cs.hostName,
          ca: p.ca,
          method,
          path,
          agent: false,
          headers: {
            host: cs.hostName,
            authorization: token({}),
            "content-type": "application/json; charset=utf-8",
            "transfer-encoding": "chunked",
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) });
          });
        },
      );
      // The server may answer before the whole body is out; a reset after that is not a failure.
      req.on("error", reject);
      for (let i = 0; i < body.length; i += 8 * 1024) req.write(body.subarray(i, i + 8 * 1024));
      req.end();
    });
  }

  // --- Authentication ------------------------------------------------------------------------

  const enrollmentQuery = (auth: string | null): Promise<HttpReply> =>
    call(p, "POST", `/enrollments/query${API}`, { body: JSON.stringify({ query: "*" }), auth });

  test("no Authorization header is 401001", async () => {
    assertError(await enrollmentQuery(null), 401, 401001, [/Authorization/, /SharedAccessSignature/]);
  });

  test("a garbage Authorization header is 401002", async () => {
    for (const auth of ["hello", "SharedAccessSignature", "SharedAccessSignature sr=localhost", "Basic dXNlcjpwYXNz"]) {
      assertError(await enrollmentQuery(auth), 401, 401002, [/SharedAccessSignature/]);
    }
  });

  test("a Bearer token is 401002", async () => {
    assertError(await enrollmentQuery("Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln"), 401, 401002, [
      /[Bb]earer/,
      /SharedAccessSignature/,
    ]);
  });

  test("a token with the wrong signature is 401002", async () => {
    const wrongKey = token({ key: randomBytes(32).toString("base64") });
    assertError(await enrollmentQuery(wrongKey), 401, 401002, [/signature/, new RegExp(cs.keyName)]);
    // Right key, but the signature covers another expiry.
    const se = nowSeconds() + 3600;
    const tampered = `SharedAccessSignature sr=${cs.hostName}&sig=${encodeURIComponent(sign(cs.key, cs.hostName, se))}&se=${se + 1}&skn=${cs.keyName}`;
    assertError(await enrollmentQuery(tampered), 401, 401002, [/signature/]);
  });

  test("a token for another host (sr mismatch) is 401002", async () => {
    const r = await enrollmentQuery(token({ sr: "other-dps.example.com" }));
    assertError(r, 401, 401002, [/other-dps\.example\.com/, new RegExp(cs.hostName)]);
  });

  test("an expired token (se an hour ago) is 401003", async () => {
    const se = nowSeconds() - 3600;
    const r = await enrollmentQuery(token({ se }));
    assertError(r, 401, 401003, [/expired/, new RegExp(new Date(se * 1000).toISOString())]);
  });

  test("a token with an unknown skn is 401002 and names the policy", async () => {
    const r = await enrollmentQuery(token({ skn: "nosuchpolicy" }));
    assertError(r, 401, 401002, [/nosuchpolicy/]);
  });

  test("a token without skn is 401002", async () => {
    const se = nowSeconds() + 3600;
    const r = await enrollmentQuery(
      `SharedAccessSignature sr=${cs.hostName}&sig=${encodeURIComponent(sign(cs.key, cs.hostName, se))}&se=${se}`,
    );
    assertError(r, 401, 401002, [/skn/]);
  });

  test("token fields in another order (sig, se, skn, sr) succeed", async () => {
    const se = nowSeconds() + 3600;
    const sig = encodeURIComponent(sign(cs.key, cs.hostName, se));
    const r = await enrollmentQuery(`SharedAccessSignature sig=${sig}&se=${se}&skn=${cs.keyName}&sr=${cs.hostName}`);
    assertOk(r);
    assert.ok(Array.isArray(r.json()));
  });

  test("a C#-style URL-encoded sr succeeds", async () => {
    // C# signs UrlEncode(target) and sends it as is; the docs' style scopes it to a path.
    for (const sr of [
      encodeURIComponent(`${cs.hostName}/enrollments`),
      encodeURIComponent(cs.hostName.toUpperCase()),
    ]) {
      const se = nowSeconds() + 1200;
      const auth = `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sign(cs.key, sr, se))}&se=${se}&skn=${cs.keyName}`;
      const r = await enrollmentQuery(auth);
      assertOk(r);
    }
  });

  test("a token signed with the secondary key succeeds", async () => {
    const keys = await call(p, "POST", "/provisioningServices/provisio/listkeys");
    assertOk(keys);
    const owner = (keys.json() as { value: { keyName: string; secondaryKey: string }[] }).value.find(
      (x) => x.keyName === cs.keyName,
    );
    assert.ok(owner);
    assertOk(await enrollmentQuery(token({ key: owner.secondaryKey })));
  });

  test("an unauthenticated PUT writes nothing", async () => {
    const body = JSON.stringify(symmetric("no-auth"));
    const path = enrollmentPath("no-auth");
    assertError(await call(p, "PUT", path, { body, auth: null }), 401, 401001);
    assertError(await call(p, "PUT", path, { body, auth: token({ key: keyOf(32, 9) }) }), 401, 401002);
    assertError(await call(p, "PUT", path, { body, auth: token({ se: nowSeconds() - 3600 }) }), 401, 401003);
    await assertNotStored("enrollment", "no-auth");
  });

  test("a policy without the needed right gets 401004 naming the right, and writes nothing", async () => {
    const reader = await addPolicy(p, "bad-input-reader", "EnrollmentRead");
    const asReader = (method: string, path: string, body?: unknown) =>
      call(p, method, path, {
        connectionString: reader,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    assertOk(await asReader("POST", `/enrollments/query${API}`, { query: "*" }));
    assertError(await asReader("PUT", enrollmentPath("reader-put"), symmetric("reader-put")), 401, 401004, [
      /bad-input-reader/,
      /EnrollmentWrite/,
    ]);
    await assertNotStored("enrollment", "reader-put");
    assertError(
      await asReader("POST", `/enrollments/${API}`, { mode: "create", enrollments: [symmetric("reader-bulk")] }),
      401,
      401004,
      [/EnrollmentWrite/],
    );
    await assertNotStored("enrollment", "reader-bulk");
    assertError(await asReader("GET", `/registrations/someone${API}`), 401, 401004, [/RegistrationStatusRead/]);
    assertError(await asReader("DELETE", `/registrations/someone${API}`), 401, 401004, [/RegistrationStatusWrite/]);
  });

  // --- Routing -------------------------------------------------------------------------------

  test("an unknown path is 404001", async () => {
    assertError(await send("GET", `/devices/x${API}`), 404, 404001, [/GET/, /\/devices\/x/]);
    assertError(await send("GET", "/"), 404, 404001);
    assertError(await send("GET", `/enrollments/x/attestationmechanism/more${API}`), 404, 404001);
  });

  test("a wrong method is 405001", async () => {
    assertError(await send("PATCH", enrollmentPath("x"), {}), 405, 405001, [/PATCH/, /\/enrollments\/x/]);
    assertError(await send("POST", enrollmentPath("x"), {}), 405, 405001, [/POST/]);
    assertError(await send("PUT", `/enrollments${API}`, symmetric("x")), 405, 405001, [/PUT/]);
    assertError(await send("GET", enrollmentPath("x", "/attestationmechanism")), 405, 405001, [/GET/]);
    assertError(await send("DELETE", `/enrollmentGroups/g/query${API}`), 405, 405001, [/DELETE/]);
  });

  test("malformed percent-encoding in the path is 400004", async () => {
    assertError(await send("GET", `/enrollments/bad%ZZid${API}`), 400, 400004, [/percent-encoding/]);
  });

  test("collection segments are case-insensitive", async () => {
    assertOk(await send("PUT", `/ENROLLMENTS/route-case${API}`, symmetric("route-case")));
    assertOk(await send("GET", `/Enrollments/ROUTE-CASE${API}`));
    assertOk(await send("POST", `/enrollments/route-case/AttestationMechanism${API}`));
    assertOk(await send("POST", `/ENROLLMENTS/QUERY${API}`, { query: "*" }));
    assertOk(await send("PUT", `/EnrollmentGroups/route-case-g${API}`, symmetricGroup("route-case-g")));
    assertOk(await send("GET", `/enrollmentgroups/route-case-g${API}`));
    assertOk(await send("POST", `/enrollmentgroups/route-case-g/attestationmechanism${API}`));
    assertOk(await send("POST", `/ENROLLMENTGROUPS/Query${API}`, { query: "*" }));
    const regs = await send("POST", `/Registrations/route-case-g/QUERY${API}`, { query: "*" });
    assertOk(regs);
    assert.deepEqual(regs.json(), []);
    assertOk(await send("DELETE", `/EnrollmentGroups/ROUTE-CASE-G${API}`), 204);
  });

  test("a trailing slash is tolerated", async () => {
    assertOk(await send("PUT", `/enrollments/slash-1/${API}`, symmetric("slash-1")));
    assertOk(await send("GET", `/enrollments/slash-1/${API}`));
    assertOk(await send("POST", `/enrollments/slash-1/attestationmechanism/${API}`));
    assertOk(await send("POST", `/enrollments/query/${API}`, { query: "*" }));
    assertOk(await send("DELETE", `/enrollments/slash-1/`), 204);
    await assertNotStored("enrollment", "slash-1");
  });

  test("no api-version and an odd api-version both work", async () => {
    assertOk(await send("PUT", "/enrollments/api-version-1", symmetric("api-version-1")));
    assertOk(await send("GET", "/enrollments/api-version-1?api-version=1999-01-01-preview&unknown=1"));
    assertOk(await send("GET", "/enrollments/api-version-1?api-version="));
    assertOk(await send("POST", "/enrollments/query?api-version=banana", { query: "*" }));
  });

  test("a percent-encoded id round-trips: a%3Ab.c_d-e is a:b.c_d-e", async () => {
    const r = await send("PUT", `/enrollments/a%3Ab.c_d-e${API}`, symmetric("a:b.c_d-e"));
    assertOk(r);
    assert.equal((r.json() as Json).registrationId, "a:b.c_d-e");
    const g = await send("GET", `/enrollments/a%3ab.c_d-e${API}`);
    assertOk(g);
    assert.equal((g.json() as Json).registrationId, "a:b.c_d-e");
    const plain = await send("GET", `/enrollments/a:b.c_d-e${API}`);
    assertOk(plain);
    assert.equal((plain.json() as Json).etag, (g.json() as Json).etag);
    const listed = (await send("POST", `/enrollments/query${API}`, { query: "*" })).json() as Json[];
    assert.ok(listed.some((e) => e.registrationId === "a:b.c_d-e"));
  });

  test("GET and DELETE of unknown ids are 404201 (enrollment), 404203 (group), 404202 (registration)", async () => {
    assertError(await send("GET", enrollmentPath("ghost")), 404, 404201, [/Enrollment 'ghost'/]);
    assertError(await send("DELETE", enrollmentPath("ghost")), 404, 404201, [/'ghost'/]);
    assertError(await send("GET", groupPath("ghost-group")), 404, 404203, [/Enrollment group 'ghost-group'/]);
    assertError(await send("DELETE", groupPath("ghost-group")), 404, 404203, [/'ghost-group'/]);
    assertError(await send("GET", `/registrations/ghost-device${API}`), 404, 404202, [/'ghost-device'/]);
    assertError(await send("DELETE", `/registrations/ghost-device${API}`), 404, 404202, [/'ghost-device'/]);
    // With If-Match, existence is still checked first (service-api.md §6).
    assertError(await send("DELETE", enrollmentPath("ghost"), undefined, { "if-match": "*" }), 404, 404201);
    assertError(await send("DELETE", groupPath("ghost-group"), undefined, { "if-match": "abc" }), 404, 404203);
  });

  test("attestationmechanism of an unknown id is 404", async () => {
    assertError(await send("POST", enrollmentPath("ghost", "/attestationmechanism")), 404, 404201, [/'ghost'/]);
    assertError(await send("POST", `/enrollmentgroups/ghost-group/attestationmechanism${API}`), 404, 404203, [
      /'ghost-group'/,
    ]);
  });

  // --- If-Match ------------------------------------------------------------------------------

  test("PUT with If-Match on a missing record is 412002 and writes nothing", async () => {
    for (const ifMatch of ["*", '"abc"', "IjEyMyI="]) {
      const r = await send("PUT", enrollmentPath("if-match-missing"), symmetric("if-match-missing"), {
        "if-match": ifMatch,
      });
      assertError(r, 412, 412002, [/'if-match-missing'/, /etag/]);
    }
    await assertNotStored("enrollment", "if-match-missing");
    const g = await send("PUT", groupPath("if-match-missing-g"), symmetricGroup("if-match-missing-g"), {
      "if-match": "*",
    });
    assertError(g, 412, 412002);
    await assertNotStored("group", "if-match-missing-g");
  });

  test("If-Match: quoted and unquoted etags both match, * matches, a stale one is 412002", async () => {
    const id = "if-match-1";
    const put = (ifMatch: string, status = "enabled") =>
      send("PUT", enrollmentPath(id), symmetric(id, { provisioningStatus: status }), { "if-match": ifMatch });
    const created = await send("PUT", enrollmentPath(id), symmetric(id));
    assertOk(created);
    const etag0 = (created.json() as Json).etag as string;

    const unquoted = await put(etag0, "disabled");
    assertOk(unquoted);
    const etag1 = (unquoted.json() as Json).etag as string;
    assert.notEqual(etag1, etag0);

    const quoted = await put(`"${etag1}"`);
    assertOk(quoted);
    const etag2 = (quoted.json() as Json).etag as string;
    assert.notEqual(etag2, etag1);

    const star = await put("*", "disabled");
    assertOk(star);
    const etag3 = (star.json() as Json).etag as string;

    assertError(await put(etag0), 412, 412002, [/'if-match-1'/]);
    assertError(await put(`"${etag2}"`), 412, 412002);
    const current = await get("enrollment", id);
    assert.equal((current.json() as Json).etag, etag3, "a refused PUT changes nothing");
    assert.equal((current.json() as Json).provisioningStatus, "disabled");

    assertError(await send("DELETE", enrollmentPath(id), undefined, { "if-match": etag1 }), 412, 412002);
    assertOk(await send("DELETE", enrollmentPath(id), undefined, { "if-match": `"${etag3}"` }), 204);
    await assertNotStored("enrollment", id);
  });

  // --- Queries -------------------------------------------------------------------------------

  test("a query's text is not read: any JSON lists everything, paged, as DPS does (issue 15.3)", async () => {
    const all = await query("enrollments", { query: "*" }, { "x-ms-max-item-count": "1000" });
    assertOk(all);
    const everything = (all.json() as Json[]).map((e) => e.registrationId);
    for (const body of [
      [{ query: "SELECT *" }], // what `az iot dps enrollment list` sends
      { query: "SELECT * FROM enrollments WHERE provisioningStatus = 'disabled'" },
      { query: "SELECT registrationId FROM enrollments" },
      { query: 5 },
      '"*"', // a JSON string (send() passes strings through as they are)
      null,
      undefined,
    ]) {
      const r = await query("enrollments", body, { "x-ms-max-item-count": "1000" });
      assertOk(r);
      assert.deepEqual(
        (r.json() as Json[]).map((e) => e.registrationId),
        everything,
        JSON.stringify(body),
      );
    }
    assertOk(await query("enrollmentGroups", [{ query: "SELECT *" }]));
    assertError(await send("POST", `/enrollments/query${API}`, "{not json"), 400, 400001);
  });

  test("x-ms-max-item-count of 0, -1, abc, 1.5 or 5000 is 400012", async () => {
    for (const count of ["0", "-1", "abc", "1.5", "5000"]) {
      const r = await query("enrollments", { query: "*" }, { "x-ms-max-item-count": count });
      assertError(r, 400, 400012, [/x-ms-max-item-count/, /1 to 1000/]);
    }
    for (const count of ["1", "1000"]) {
      assertOk(await query("enrollments", { query: "*" }, { "x-ms-max-item-count": count }));
    }
  });

  test("a garbage x-ms-continuation is 400011", async () => {
    for (const continuation of ["garbage", "%%%", "eyJvZmZzZXQiOjF9"]) {
      const r = await query("enrollments", { query: "*" }, { "x-ms-continuation": continuation });
      assertError(r, 400, 400011, [/x-ms-continuation/]);
    }
  });

  test("an empty collection query is [] with x-ms-item-type and no x-ms-continuation", async () => {
    const r = await send("POST", `/registrations/nobody-registered/query${API}`, { query: "*" });
    assertOk(r);
    assert.match(String(r.headers["content-type"]), /application\/json/);
    assert.deepEqual(r.json(), []);
    assert.equal(r.headers["x-ms-item-type"], "DeviceRegistration");
    assert.equal(r.headers["x-ms-continuation"], undefined);
    assert.ok(!("x-ms-continuation" in r.headers), "the header is absent, not empty");
  });

  test("a registration query with no body works", async () => {
    const r = await send("POST", `/registrations/nobody-registered/query${API}`, undefined, { "content-length": "0" });
    assertOk(r);
    assert.deepEqual(r.json(), []);
    assert.equal(r.headers["x-ms-item-type"], "DeviceRegistration");
    const chunked = await send("POST", `/registrations/nobody-registered/query${API}`);
    assertOk(chunked);
    assert.deepEqual(chunked.json(), []);
  });

  test("the last page of an enrollment query has no x-ms-continuation", async () => {
    const r = await query("enrollments", { query: "*" }, { "x-ms-max-item-count": "1000" });
    assertOk(r);
    assert.equal(r.headers["x-ms-item-type"], "Enrollment");
    assert.ok(!("x-ms-continuation" in r.headers));
  });

  // --- Bulk ----------------------------------------------------------------------------------

  const bulk = (body: unknown, collection = "enrollments") => send("POST", `/${collection}/${API}`, body);

  test("bulk with 11 items is 400009 and writes nothing", async () => {
    const ids = Array.from({ length: 11 }, (_, i) => `bulk-eleven-${i}`);
    const r = await bulk({ mode: "create", enrollments: ids.map((id) => symmetric(id)) });
    assertError(r, 400, 400009, [/enrollments/, /1 to 10/]);
    for (const id of ids) await assertNotStored("enrollment", id);
    const g = await bulk({ mode: "create", enrollmentGroups: ids.map((id) => symmetricGroup(id)) }, "enrollmentGroups");
    assertError(g, 400, 400009, [/enrollmentGroups/, /1 to 10/]);
    for (const id of ids) await assertNotStored("group", id);
  });

  test("bulk with an empty or missing item array is 400009", async () => {
    assertError(await bulk({ mode: "create", enrollments: [] }), 400, 400009, [/enrollments/]);
    assertError(await bulk({ mode: "create" }), 400, 400009, [/enrollments/]);
    assertError(await bulk({ mode: "create", enrollments: symmetric("x") }), 400, 400009, [/array/]);
    // The group array under the individual collection's key is not silently accepted.
    assertError(await bulk({ mode: "create", enrollmentGroups: [symmetricGroup("bulk-wrong-key")] }), 400, 400009);
    await assertNotStored("group", "bulk-wrong-key");
  });

  test("bulk with an unknown mode is 400009 and writes nothing", async () => {
    for (const mode of ["upsert", "", 1, null]) {
      const r = await bulk({ mode, enrollments: [symmetric("bulk-mode-bad")] });
      assertError(r, 400, 400009, [/mode/, /create/, /updateIfMatchETag/]);
    }
    assertError(await bulk({ enrollments: [symmetric("bulk-mode-bad")] }), 400, 400009, [/mode/]);
    assertError(await bulk([{ mode: "create" }]), 400, 400009, [/mode/]);
    await assertNotStored("enrollment", "bulk-mode-bad");
  });

  test("bulk item without an id fails the whole request with 400009", async () => {
    const r = await bulk({
      mode: "create",
      enrollments: [symmetric("bulk-noid-ok"), { attestation: { type: "symmetricKey" } }],
    });
    assertError(r, 400, 400009, [/item 1/, /registrationId/]);
    await assertNotStored("enrollment", "bulk-noid-ok");
    const g = await bulk(
      { mode: "create", enrollmentGroups: [symmetricGroup("bulk-noid-g"), { enrollmentGroupId: 7 }] },
      "enrollmentGroups",
    );
    assertError(g, 400, 400009, [/enrollmentGroupId/]);
    await assertNotStored("group", "bulk-noid-g");
  });

  test("bulk with duplicate ids (any case) is 400009 and writes nothing", async () => {
    const r = await bulk({ mode: "create", enrollments: [symmetric("bulk-dup"), symmetric("BULK-DUP")] });
    assertError(r, 400, 400009, [/BULK-DUP/, /more than once/]);
    await assertNotStored("enrollment", "bulk-dup");
  });

  test("bulk mode is matched case-insensitively (CREATE, updateIfMatchEtag)", async () => {
    const created = await bulk({ mode: "CREATE", enrollments: [symmetric("bulk-case-1"), symmetric("bulk-case-2")] });
    assertOk(created);
    assert.deepEqual(created.json(), { isSuccessful: true, errors: [] });
    const e1 = (await get("enrollment", "bulk-case-1")).json() as Json;
    const e2 = (await get("enrollment", "bulk-case-2")).json() as Json;

    const updated = await bulk({
      mode: "updateIfMatchEtag",
      enrollments: [
        symmetric("bulk-case-1", { etag: e1.etag, provisioningStatus: "disabled" }),
        symmetric("bulk-case-2", { etag: "stale", provisioningStatus: "disabled" }),
      ],
    });
    assertOk(updated);
    const result = updated.json() as { isSuccessful: boolean; errors: Json[] };
    assert.equal(result.isSuccessful, false);
    assert.equal(result.errors.length, 1);
    assert.equal(result.errors[0]?.registrationId, "bulk-case-2");
    assert.equal(result.errors[0]?.errorCode, 412002);
    assert.equal(typeof result.errors[0]?.errorStatus, "string");
    assert.equal(((await get("enrollment", "bulk-case-1")).json() as Json).provisioningStatus, "disabled");
    const still = (await get("enrollment", "bulk-case-2")).json() as Json;
    assert.equal(still.etag, e2.etag, "the refused item changed nothing");

    const deleted = await bulk({ mode: "Delete", enrollments: [{ registrationId: "bulk-case-1" }] });
    assertOk(deleted);
    assert.deepEqual(deleted.json(), { isSuccessful: true, errors: [] });
    await assertNotStored("enrollment", "bulk-case-1");

    const groups = await bulk(
      { mode: "Create", enrollmentGroups: [symmetricGroup("bulk-case-g")] },
      "enrollmentGroups",
    );
    assertOk(groups);
    assert.deepEqual(groups.json(), { isSuccessful: true, errors: [] });
    assertOk(await get("group", "bulk-case-g"));
  });

  test("bulk items that fail validation fail alone with the PUT error code", async () => {
    const r = await bulk({
      mode: "create",
      enrollments: [
        symmetric("bulk-item-ok"),
        { registrationId: "bulk-item-tpm", attestation: { type: "tpm" } },
        symmetric("bulk-item-status", { provisioningStatus: "maybe" }),
        symmetric("bad id!"),
      ],
    });
    assertOk(r);
    const result = r.json() as { isSuccessful: boolean; errors: Json[] };
    assert.equal(result.isSuccessful, false);
    assert.deepEqual(
      result.errors.map((e) => [e.registrationId, e.errorCode]),
      [
        ["bulk-item-tpm", 400008],
        ["bulk-item-status", 400004],
        ["bad id!", 400006],
      ],
    );
    for (const e of result.errors) assert.ok(String(e.errorStatus).length > 10);
    assertOk(await get("enrollment", "bulk-item-ok"));
    await assertNotStored("enrollment", "bulk-item-tpm");
    await assertNotStored("enrollment", "bulk-item-status");
  });
});
