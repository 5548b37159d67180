// PUT bodies of enrollments and groups → stored records (service-api.md §3.1, §4, §11.8), and the
// certificate facts reported for x509 attestation (service-api.md §4.3).
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import { certificateInfo, distinguishedName, parseCertificate } from "../../src/attestation/x509-info.js";
import type { EnrollmentGroup, IndividualEnrollment, X509CertificateInfo } from "../../src/domain/enrollment.js";
import { symmetricKeysOf, x509Of } from "../../src/domain/enrollment.js";
import { ProvisioError } from "../../src/domain/errors.js";
import { enrollmentGroupFromBody, individualEnrollmentFromBody } from "../../src/service-api/enrollment-body.js";

// Generated once with:
//   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/C=US/O=MSFT/CN=device-1" \
//     -days 36500 -set_serial 0x1a2b3c4d5e6f -sha256
// openssl x509 -noout -fingerprint -sha1 / -sha256 gave the thumbprints below.
const CERT_A = `-----BEGIN CERTIFICATE-----
MIIBpzCCAU2gAwIBAgIGGis8TV5vMAoGCCqGSM49BAMCMC8xCzAJBgNVBAYTAlVT
MQ0wCwYDVQQKDARNU0ZUMREwDwYDVQQDDAhkZXZpY2UtMTAgFw0yNjExMjIyMDEz
MzBaGA8yMTI2MTAyOTIwMTMzMFowLzELMAkGA1UEBhMCVVMxDTALBgNVBAoMBE1T
RlQxETAPBgNVBAMMCGRldmljZS0xMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE
KYQvg6g1VybaA+GRQIPbSHZvxsnqeRjGdEq2VaBlLtYPOQ0QUe4HYk1SAhrEVwst
JE6G0ROJtROtmhsSP7Gbk6NTMFEwHQYDVR0OBBYEFDyzZ0VQDHPx7ARZT7vuUxiA
joIGMB8GA1UdIwQYMBaAFDyzZ0VQDHPx7ARZT7vuUxiAjoIGMA8GA1UdEwEB/wQF
MAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIhAMEMvxMlJs95llP6PiS0WV2yJF92+65r
0167C0wI+mgGAiBRqd4NETR3Zj/zdZDAVoanJYdKJ6UgZoEo2BuI0xvbQA==
-----END CERTIFICATE-----
`;
const CERT_A_SHA1 = "638E9B4A0C75A38A7C2930533C31E7B5C75668B8";
const CERT_A_SHA256 = "BFD1DFCA4F0BC72B57999C4284BB87E955F13E4B0460544ED320C8D88C0836C4";

// Same command with -subj "/C=US/O=MSFT/CN=device-1-secondary".
const CERT_B = `-----BEGIN CERTIFICATE-----
MIIBuzCCAWGgAwIBAgIGGis8TV5vMAoGCCqGSM49BAMCMDkxCzAJBgNVBAYTAlVT
MQ0wCwYDVQQKDARNU0ZUMRswGQYDVQQDDBJkZXZpY2UtMS1zZWNvbmRhcnkwIBcN
MjYxMTIyMjAxMzMwWhgPMjEyNjEwMjkyMDEzMzBaMDkxCzAJBgNVBAYTAlVTMQ0w
CwYDVQQKDARNU0ZUMRswGQYDVQQDDBJkZXZpY2UtMS1zZWNvbmRhcnkwWTATBgcq
hkjOPQIBBggqhkjOPQMBBwNCAAQFEvPgLmBF8+h076+a0pzdtC13clS+OgOsC7ax
du66J5XS57TqkPuEnyZD+S7ikDFrFJHLlZeXrqcBE33gbF7io1MwUTAdBgNVHQ4E
FgQUCWQZIj7qa8gZka1UZ9GEkTaHjZUwHwYDVR0jBBgwFoAUCWQZIj7qa8gZka1U
Z9GEkTaHjZUwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiEA1iWy
vMeckoZ/YjkXKm1wZEGJFSvDwSiqgg7vAz7VDpACIBKvGqxOkj0Rj11h8UAphssI
V3bsXu3tZyeSPE9QuN3V
-----END CERTIFICATE-----
`;
const CERT_B_SHA1 = "82C420C96BEAA83281372061547C1AB4DFF1D0D7";

/** The base64 DER body of a PEM, without headers or line breaks. */
const derBase64 = (pem: string): string => pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, "");

const isProvisioError = (code: number) => (e: unknown) => e instanceof ProvisioError && e.errorCode === code;

const KEY_32 = Buffer.alloc(32, 0x01).toString("base64");
const KEY_32_B = Buffer.alloc(32, 0x02).toString("base64");

const symmetricBody = (id: string, extra: Record<string, unknown> = {}) => ({
  registrationId: id,
  attestation: { type: "symmetricKey" },
  ...extra,
});

const x509Body = (id: string, clientCertificates: unknown, extra: Record<string, unknown> = {}) => ({
  registrationId: id,
  attestation: { type: "x509", x509: { clientCertificates } },
  ...extra,
});

// --- symmetric keys ---

test("missing symmetric keys are generated: 64 random bytes each, all different", () => {
  const a = individualEnrollmentFromBody(symmetricBody("device-1"), "device-1", undefined);
  const b = individualEnrollmentFromBody(symmetricBody("device-2"), "device-2", undefined);
  assert.equal(a.attestation.type, "symmetricKey");
  const ka = symmetricKeysOf(a.attestation);
  const kb = symmetricKeysOf(b.attestation);
  assert.ok(ka && kb);
  for (const key of [ka.primaryKey, ka.secondaryKey, kb.primaryKey, kb.secondaryKey]) {
    assert.equal(Buffer.from(key, "base64").length, 64);
    assert.equal(Buffer.from(key, "base64").toString("base64"), key, "canonical base64");
  }
  assert.equal(new Set([ka.primaryKey, ka.secondaryKey, kb.primaryKey, kb.secondaryKey]).size, 4);
});

test("a group's missing symmetric keys are generated too", () => {
  const g = enrollmentGroupFromBody(
    { enrollmentGroupId: "group-1", attestation: { type: "symmetricKey" } },
    "group-1",
    undefined,
  );
  const keys = symmetricKeysOf(g.attestation);
  assert.ok(keys);
  assert.equal(Buffer.from(keys.primaryKey, "base64").length, 64);
  assert.equal(Buffer.from(keys.secondaryKey, "base64").length, 64);
  assert.notEqual(keys.primaryKey, keys.secondaryKey);
});

test("supplied symmetric keys are kept verbatim", () => {
  const e = individualEnrollmentFromBody(
    {
      registrationId: "device-1",
      attestation: { type: "symmetricKey", symmetricKey: { primaryKey: KEY_32, secondaryKey: KEY_32_B } },
    },
    "device-1",
    undefined,
  );
  assert.deepEqual(e.attestation, {
    type: "symmetricKey",
    symmetricKey: { primaryKey: KEY_32, secondaryKey: KEY_32_B },
  });
});

test("a supplied primary key is kept and only the missing secondary is generated", () => {
  const e = individualEnrollmentFromBody(
    { registrationId: "device-1", attestation: { type: "symmetricKey", symmetricKey: { primaryKey: KEY_32 } } },
    "device-1",
    undefined,
  );
  assert.equal(symmetricKeysOf(e.attestation)?.primaryKey, KEY_32);
  assert.equal(Buffer.from(symmetricKeysOf(e.attestation)?.secondaryKey ?? "", "base64").length, 64);
});

test("an echoed body with no keys keeps the existing keys", () => {
  const existing = individualEnrollmentFromBody(symmetricBody("device-1"), "device-1", undefined);
  // A GET redacts keys: the attestation comes back as {"type":"symmetricKey"}.
  const updated = individualEnrollmentFromBody(symmetricBody("device-1"), "device-1", existing);
  assert.deepEqual(updated.attestation, existing.attestation);
  const withNulls = individualEnrollmentFromBody(
    {
      registrationId: "device-1",
      attestation: { type: "symmetricKey", symmetricKey: { primaryKey: null, secondaryKey: null } },
    },
    "device-1",
    existing,
  );
  assert.deepEqual(withNulls.attestation, existing.attestation);
});

test("a supplied key replaces the existing one; the other existing key is kept", () => {
  const existing = individualEnrollmentFromBody(symmetricBody("device-1"), "device-1", undefined);
  const updated = individualEnrollmentFromBody(
    { registrationId: "device-1", attestation: { type: "symmetricKey", symmetricKey: { secondaryKey: KEY_32 } } },
    "device-1",
    existing,
  );
  assert.equal(symmetricKeysOf(updated.attestation)?.primaryKey, symmetricKeysOf(existing.attestation)?.primaryKey);
  assert.equal(symmetricKeysOf(updated.attestation)?.secondaryKey, KEY_32);
});

test("a symmetric key that is not base64 of 16-64 bytes is 400008", () => {
  const bad = [
    "not base64!",
    "AAAA=",
    Buffer.alloc(15).toString("base64"),
    Buffer.alloc(65).toString("base64"),
    Buffer.alloc(32).toString("base64").replace(/=+$/, ""),
    42,
  ];
  for (const primaryKey of bad) {
    assert.throws(
      () =>
        individualEnrollmentFromBody(
          { registrationId: "d", attestation: { type: "symmetricKey", symmetricKey: { primaryKey } } },
          "d",
          undefined,
        ),
      isProvisioError(400008),
      String(primaryKey),
    );
  }
  for (const ok of [Buffer.alloc(16).toString("base64"), Buffer.alloc(64).toString("base64")]) {
    const e = individualEnrollmentFromBody(
      { registrationId: "d", attestation: { type: "symmetricKey", symmetricKey: { primaryKey: ok } } },
      "d",
      undefined,
    );
    assert.equal(symmetricKeysOf(e.attestation)?.primaryKey, ok);
  }
});

// --- read-only fields and timestamps ---

test("read-only fields in the body are ignored", () => {
  const e = individualEnrollmentFromBody(
    symmetricBody("device-1", {
      etag: "bogus-etag",
      createdDateTimeUtc: "2000-01-01T00:00:00Z",
      lastUpdatedDateTimeUtc: "2000-01-02T00:00:00Z",
      registrationState: { registrationId: "device-1", status: "assigned", assignedHub: "evil.azure-devices.net" },
    }),
    "device-1",
    undefined,
  );
  assert.notEqual(e.etag, "bogus-etag");
  assert.notEqual(e.createdDateTimeUtc, "2000-01-01T00:00:00Z");
  assert.notEqual(e.lastUpdatedDateTimeUtc, "2000-01-02T00:00:00Z");
  assert.equal("registrationState" in e, false);
  assert.equal(e.createdDateTimeUtc, e.lastUpdatedDateTimeUtc, "a new record is created and updated at once");
  assert.ok(Math.abs(Date.parse(e.createdDateTimeUtc) - Date.now()) < 60_000);
});

test("an update keeps createdDateTimeUtc from the existing record and sets a new etag and lastUpdatedDateTimeUtc", () => {
  const first = individualEnrollmentFromBody(symmetricBody("device-1"), "device-1", undefined);
  const existing: IndividualEnrollment = {
    ...first,
    createdDateTimeUtc: "2020-01-01T00:00:00.000Z",
    lastUpdatedDateTimeUtc: "2020-01-01T00:00:00.000Z",
  };
  const updated = individualEnrollmentFromBody(
    symmetricBody("device-1", { etag: existing.etag, createdDateTimeUtc: "2021-06-01T00:00:00Z" }),
    "device-1",
    existing,
  );
  assert.equal(updated.createdDateTimeUtc, "2020-01-01T00:00:00.000Z");
  assert.notEqual(updated.lastUpdatedDateTimeUtc, "2020-01-01T00:00:00.000Z");
  assert.notEqual(updated.etag, existing.etag);
});

// --- ids ---

test("a body id that differs from the path id only in case is accepted", () => {
  const e = individualEnrollmentFromBody(symmetricBody("Device-1"), "device-1", undefined);
  assert.equal(e.registrationId, "Device-1", "with nothing stored, the body's spelling is kept");
  const g = enrollmentGroupFromBody(
    { enrollmentGroupId: "GROUP-1", attestation: { type: "symmetricKey" } },
    "group-1",
    undefined,
  );
  assert.equal(g.enrollmentGroupId, "GROUP-1");
});

test("a body id different from the path id is 400005", () => {
  assert.throws(
    () => individualEnrollmentFromBody(symmetricBody("device-2"), "device-1", undefined),
    (e: unknown) =>
      e instanceof ProvisioError &&
      e.errorCode === 400005 &&
      e.status === 400 &&
      e.message.includes("'device-2'") &&
      e.message.includes("'device-1'"),
  );
  assert.throws(
    () =>
      enrollmentGroupFromBody(
        { enrollmentGroupId: "group-2", attestation: { type: "symmetricKey" } },
        "group-1",
        undefined,
      ),
    isProvisioError(400005),
  );
});

test("the first stored spelling of an id is kept across updates", () => {
  const existing = individualEnrollmentFromBody(symmetricBody("Device-One"), "Device-One", undefined);
  const updated = individualEnrollmentFromBody(symmetricBody("DEVICE-ONE"), "device-one", existing);
  assert.equal(updated.registrationId, "Device-One");

  const group = enrollmentGroupFromBody(
    { enrollmentGroupId: "Group-A", attestation: { type: "symmetricKey" } },
    "group-a",
    undefined,
  );
  const regrouped = enrollmentGroupFromBody(
    { enrollmentGroupId: "group-a", attestation: { type: "symmetricKey" } },
    "GROUP-A",
    group,
  );
  assert.equal(regrouped.enrollmentGroupId, "Group-A");
});

test("a missing, non-string or invalid body id is rejected", () => {
  assert.throws(
    () => individualEnrollmentFromBody({ attestation: { type: "symmetricKey" } }, "d", undefined),
    isProvisioError(400004),
  );
  assert.throws(
    () => individualEnrollmentFromBody({ registrationId: null, attestation: { type: "symmetricKey" } }, "d", undefined),
    isProvisioError(400004),
  );
  assert.throws(
    () => individualEnrollmentFromBody({ registrationId: 7, attestation: { type: "symmetricKey" } }, "7", undefined),
    isProvisioError(400004),
  );
  assert.throws(() => individualEnrollmentFromBody(symmetricBody("bad."), "bad.", undefined), isProvisioError(400006));
  assert.throws(
    () =>
      enrollmentGroupFromBody({ enrollmentGroupId: "bad.", attestation: { type: "symmetricKey" } }, "bad.", undefined),
    isProvisioError(400007),
  );
  for (const body of [null, "text", [symmetricBody("d")], 5]) {
    assert.throws(() => individualEnrollmentFromBody(body, "d", undefined), isProvisioError(400004), String(body));
  }
});

// --- attestation shape ---

test("a missing or unknown attestation type is 400008", () => {
  for (const attestation of [
    undefined,
    null,
    "symmetricKey",
    {},
    { type: null },
    { type: "none" },
    { type: "SymmetricKey" },
  ]) {
    assert.throws(
      () => individualEnrollmentFromBody({ registrationId: "d", attestation }, "d", undefined),
      isProvisioError(400008),
      JSON.stringify(attestation),
    );
  }
});

test("TPM attestation keeps the endorsement key, unpadded base64 allowed; groups cannot use TPM", () => {
  const e = individualEnrollmentFromBody(
    {
      registrationId: "d",
      attestation: { type: "tpm", tpm: { endorsementKey: "AToAAQALAAMAsgAg", storageRootKey: null } },
    },
    "d",
    undefined,
  );
  assert.deepEqual(e.attestation, { type: "tpm", tpm: { endorsementKey: "AToAAQALAAMAsgAg" } });
  assert.throws(
    () => individualEnrollmentFromBody({ registrationId: "d", attestation: { type: "tpm", tpm: {} } }, "d", undefined),
    isProvisioError(400008),
  );
  assert.throws(
    () =>
      enrollmentGroupFromBody(
        { enrollmentGroupId: "g", attestation: { type: "tpm", tpm: { endorsementKey: "AToAAQ" } } },
        "g",
        undefined,
      ),
    isProvisioError(400008),
  );
});

// --- x509 ---

const expectedInfoA: X509CertificateInfo = {
  subjectName: "CN=device-1, O=MSFT, C=US",
  sha1Thumbprint: CERT_A_SHA1,
  sha256Thumbprint: CERT_A_SHA256,
  issuerName: "CN=device-1, O=MSFT, C=US",
  notBeforeUtc: "2026-11-22T20:13:30Z",
  notAfterUtc: "2126-10-29T20:13:30Z",
  serialNumber: "1A2B3C4D5E6F",
  version: 3,
};

test("the pasted fixture's thumbprints match a hash of its DER", () => {
  const der = Buffer.from(derBase64(CERT_A), "base64");
  assert.equal(createHash("sha1").update(der).digest("hex").toUpperCase(), CERT_A_SHA1);
  assert.equal(createHash("sha256").update(der).digest("hex").toUpperCase(), CERT_A_SHA256);
});

test("an x509 client certificate is reported as info with upper-case hex thumbprints and a CN-first subject", () => {
  const e = individualEnrollmentFromBody(
    x509Body("device-1", { primary: { certificate: CERT_A } }),
    "device-1",
    undefined,
  );
  assert.equal(e.attestation.type, "x509");
  const primary = x509Of(e.attestation)?.clientCertificates?.primary;
  assert.ok(primary);
  assert.deepEqual(primary.info, expectedInfoA);
  assert.match(primary.info.sha1Thumbprint, /^[0-9A-F]{40}$/);
  assert.match(primary.info.sha256Thumbprint, /^[0-9A-F]{64}$/);
  assert.match(primary.certificate ?? "", /^-----BEGIN CERTIFICATE-----\n/);
  assert.equal(derBase64(primary.certificate ?? ""), derBase64(CERT_A), "the stored PEM is the same certificate");
});

test("a lone primary certificate is mirrored into secondary", () => {
  const e = individualEnrollmentFromBody(
    x509Body("device-1", { primary: { certificate: CERT_A }, secondary: null }),
    "device-1",
    undefined,
  );
  const certs = x509Of(e.attestation)?.clientCertificates;
  assert.ok(certs?.primary && certs.secondary);
  assert.deepEqual(certs.secondary, certs.primary);
});

test("a supplied secondary certificate is kept separately", () => {
  const e = individualEnrollmentFromBody(
    x509Body("device-1", { primary: { certificate: CERT_A }, secondary: { certificate: CERT_B } }),
    "device-1",
    undefined,
  );
  const certs = x509Of(e.attestation)?.clientCertificates;
  assert.equal(certs?.primary?.info.sha1Thumbprint, CERT_A_SHA1);
  assert.equal(certs?.secondary?.info.sha1Thumbprint, CERT_B_SHA1);
  assert.equal(certs?.secondary?.info.subjectName, "CN=device-1-secondary, O=MSFT, C=US");
});

test("a certificate given as base64 DER is accepted and stored as PEM", () => {
  const e = individualEnrollmentFromBody(
    x509Body("device-1", { primary: { certificate: derBase64(CERT_A) } }),
    "device-1",
    undefined,
  );
  const primary = x509Of(e.attestation)?.clientCertificates?.primary;
  assert.deepEqual(primary?.info, expectedInfoA);
  assert.match(primary?.certificate ?? "", /^-----BEGIN CERTIFICATE-----/);
});

test("a PEM with CRLF line endings or surrounding whitespace is accepted", () => {
  for (const text of [CERT_A.replaceAll("\n", "\r\n"), `\n\n  ${CERT_A}  \n`]) {
    const e = individualEnrollmentFromBody(
      x509Body("device-1", { primary: { certificate: text } }),
      "device-1",
      undefined,
    );
    assert.equal(x509Of(e.attestation)?.clientCertificates?.primary?.info.sha1Thumbprint, CERT_A_SHA1);
  }
});

test("a PEM with a text preamble is accepted, and of a chain the first certificate is the one used", () => {
  const preamble = `Bag Attributes\n    localKeyID: 01 00 00 00\nsubject=CN=device-1\n${CERT_A}`;
  const chain = `${CERT_A}${CERT_B}`;
  for (const certificate of [preamble, chain]) {
    const e = individualEnrollmentFromBody(x509Body("device-1", { primary: { certificate } }), "device-1", undefined);
    assert.equal(x509Of(e.attestation)?.clientCertificates?.primary?.info.sha1Thumbprint, CERT_A_SHA1);
  }
});

test("an entry echoed with info only keeps the existing certificate", () => {
  const existing = individualEnrollmentFromBody(
    x509Body("device-1", { primary: { certificate: CERT_A }, secondary: { certificate: CERT_B } }),
    "device-1",
    undefined,
  );
  const stored = x509Of(existing.attestation)?.clientCertificates;
  assert.ok(stored?.primary && stored.secondary);
  // What a GET returns: info without the PEM.
  const echoed = x509Body("device-1", {
    primary: { info: stored.primary.info },
    secondary: { info: stored.secondary.info },
  });
  const updated = individualEnrollmentFromBody(echoed, "device-1", existing);
  assert.deepEqual(x509Of(updated.attestation)?.clientCertificates, stored);
});

test("replacing the primary certificate keeps an info-only secondary", () => {
  const existing = individualEnrollmentFromBody(
    x509Body("device-1", { primary: { certificate: CERT_A }, secondary: { certificate: CERT_B } }),
    "device-1",
    undefined,
  );
  const secondaryInfo = x509Of(existing.attestation)?.clientCertificates?.secondary?.info;
  const updated = individualEnrollmentFromBody(
    x509Body("device-1", { primary: { certificate: CERT_B }, secondary: { info: secondaryInfo } }),
    "device-1",
    existing,
  );
  const certs = x509Of(updated.attestation)?.clientCertificates;
  assert.equal(certs?.primary?.info.sha1Thumbprint, CERT_B_SHA1);
  assert.deepEqual(certs?.secondary, x509Of(existing.attestation)?.clientCertificates?.secondary);
});

test("an info-only entry with nothing stored is 400008", () => {
  assert.throws(
    () =>
      individualEnrollmentFromBody(x509Body("device-1", { primary: { info: expectedInfoA } }), "device-1", undefined),
    isProvisioError(400008),
  );
  const symmetric = individualEnrollmentFromBody(symmetricBody("device-1"), "device-1", undefined);
  assert.throws(
    () =>
      individualEnrollmentFromBody(x509Body("device-1", { primary: { info: expectedInfoA } }), "device-1", symmetric),
    isProvisioError(400008),
  );
});

test("a certificate that is not PEM or base64 DER is 400008", () => {
  const garbage: unknown[] = [
    "garbage",
    "not a certificate at all!",
    "AAAA",
    "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    CERT_A.replace("MIIBpzCC", "MIIBpzCD"),
    42,
    { pem: CERT_A },
  ];
  for (const certificate of garbage) {
    assert.throws(
      () => individualEnrollmentFromBody(x509Body("device-1", { primary: { certificate } }), "device-1", undefined),
      isProvisioError(400008),
      String(certificate),
    );
  }
  assert.throws(
    () =>
      individualEnrollmentFromBody(
        x509Body("device-1", { primary: { certificate: "garbage" } }),
        "device-1",
        undefined,
      ),
    /Invalid attestation: x509\.clientCertificates\.primary\.certificate is not a PEM or base64 DER X\.509 certificate/,
  );
});

test("x509 attestation without a primary client certificate is 400008", () => {
  for (const clientCertificates of [undefined, null, {}, { secondary: { certificate: CERT_A } }, "x"]) {
    assert.throws(
      () => individualEnrollmentFromBody(x509Body("device-1", clientCertificates), "device-1", undefined),
      isProvisioError(400008),
      JSON.stringify(clientCertificates),
    );
  }
  assert.throws(
    () => individualEnrollmentFromBody({ registrationId: "d", attestation: { type: "x509" } }, "d", undefined),
    isProvisioError(400008),
  );
});

test("an x509 group takes signing certificates or CA references", () => {
  const signed: EnrollmentGroup = enrollmentGroupFromBody(
    {
      enrollmentGroupId: "g",
      attestation: { type: "x509", x509: { signingCertificates: { primary: { certificate: CERT_A } } } },
    },
    "g",
    undefined,
  );
  const signing = x509Of(signed.attestation)?.signingCertificates;
  assert.deepEqual(signing?.primary?.info, expectedInfoA);
  assert.deepEqual(signing?.secondary, signing?.primary);

  const referenced = enrollmentGroupFromBody(
    { enrollmentGroupId: "g", attestation: { type: "x509", x509: { caReferences: { primary: "my-root-ca" } } } },
    "g",
    undefined,
  );
  assert.deepEqual(x509Of(referenced.attestation), { caReferences: { primary: "my-root-ca" } });

  assert.throws(
    () => enrollmentGroupFromBody({ enrollmentGroupId: "g", attestation: { type: "x509", x509: {} } }, "g", undefined),
    isProvisioError(400008),
  );
});

// --- other settings ---

test("provisioningStatus defaults to enabled; enabled and disabled are kept; anything else is 400004", () => {
  assert.equal(individualEnrollmentFromBody(symmetricBody("d"), "d", undefined).provisioningStatus, "enabled");
  assert.equal(
    individualEnrollmentFromBody(symmetricBody("d", { provisioningStatus: null }), "d", undefined).provisioningStatus,
    "enabled",
  );
  assert.equal(
    individualEnrollmentFromBody(symmetricBody("d", { provisioningStatus: "disabled" }), "d", undefined)
      .provisioningStatus,
    "disabled",
  );
  for (const provisioningStatus of ["Disabled", "paused", true, 0]) {
    assert.throws(
      () => individualEnrollmentFromBody(symmetricBody("d", { provisioningStatus }), "d", undefined),
      isProvisioError(400004),
      String(provisioningStatus),
    );
  }
});

test("null optional fields are treated as absent", () => {
  const e = individualEnrollmentFromBody(
    {
      registrationId: "d",
      attestation: { type: "symmetricKey", symmetricKey: null },
      deviceId: null,
      capabilities: null,
      iotHubHostName: null,
      initialTwin: null,
      provisioningStatus: null,
      reprovisionPolicy: null,
      allocationPolicy: null,
      iotHubs: null,
      customAllocationDefinition: null,
      optionalDeviceInformation: null,
      etag: null,
      registrationState: null,
    },
    "d",
    undefined,
  );
  assert.deepEqual(Object.keys(e).sort(), [
    "attestation",
    "createdDateTimeUtc",
    "etag",
    "lastUpdatedDateTimeUtc",
    "provisioningStatus",
    "registrationId",
  ]);
  assert.equal(Buffer.from(symmetricKeysOf(e.attestation)?.primaryKey ?? "", "base64").length, 64);
});

test("null flags inside optional objects take their defaults", () => {
  const e = individualEnrollmentFromBody(
    symmetricBody("d", {
      capabilities: { iotEdge: null },
      reprovisionPolicy: { updateHubAssignment: null, migrateDeviceData: false },
      initialTwin: { tags: null, properties: { desired: null } },
    }),
    "d",
    undefined,
  );
  assert.deepEqual(e.capabilities, { iotEdge: false });
  assert.deepEqual(e.reprovisionPolicy, { updateHubAssignment: true, migrateDeviceData: false });
  assert.deepEqual(e.initialTwin, {});
});

test("optional settings are stored as given", () => {
  const e = individualEnrollmentFromBody(
    symmetricBody("d", {
      deviceId: "my-device",
      capabilities: { iotEdge: true },
      iotHubHostName: "hub1.azure-devices.net",
      initialTwin: { tags: { floor: 3 }, properties: { desired: { rate: 5 } } },
      reprovisionPolicy: { updateHubAssignment: false, migrateDeviceData: false },
      allocationPolicy: "hashed",
      iotHubs: ["hub1.azure-devices.net", "hub2.azure-devices.net"],
      optionalDeviceInformation: { model: "x" },
    }),
    "d",
    undefined,
  );
  assert.equal(e.deviceId, "my-device");
  assert.deepEqual(e.capabilities, { iotEdge: true });
  assert.equal(e.iotHubHostName, "hub1.azure-devices.net");
  assert.deepEqual(e.initialTwin, { tags: { floor: 3 }, properties: { desired: { rate: 5 } } });
  assert.deepEqual(e.reprovisionPolicy, { updateHubAssignment: false, migrateDeviceData: false });
  assert.equal(e.allocationPolicy, "hashed");
  assert.deepEqual(e.iotHubs, ["hub1.azure-devices.net", "hub2.azure-devices.net"]);
  assert.deepEqual(e.optionalDeviceInformation, { model: "x" });
});

test("malformed optional settings are 400004", () => {
  const bad: Record<string, unknown>[] = [
    { deviceId: "has space" },
    { deviceId: 5 },
    { capabilities: "edge" },
    { capabilities: { iotEdge: "yes" } },
    { iotHubHostName: 5 },
    { initialTwin: { tags: [] } },
    { initialTwin: { properties: { desired: 5 } } },
    { allocationPolicy: "Hashed" },
    { iotHubs: "hub1" },
    { iotHubs: [""] },
    { allocationPolicy: "custom" },
    { allocationPolicy: "custom", customAllocationDefinition: { webhookUrl: "ftp://x", apiVersion: "2019-03-31" } },
    { allocationPolicy: "static", iotHubs: ["a", "b"] },
  ];
  for (const extra of bad) {
    assert.throws(
      () => individualEnrollmentFromBody(symmetricBody("d", extra), "d", undefined),
      isProvisioError(400004),
      JSON.stringify(extra),
    );
  }
});

// --- x509-info ---

test("distinguishedName reverses Node's RDN order into CN-first", () => {
  assert.equal(distinguishedName("C=US\nO=MSFT\nCN=x"), "CN=x, O=MSFT, C=US");
  assert.equal(distinguishedName("CN=only"), "CN=only");
  assert.equal(distinguishedName(""), "");
});

test("parseCertificate reads PEM or base64 DER and returns undefined for anything else", () => {
  assert.equal(parseCertificate(CERT_A)?.fingerprint.replaceAll(":", ""), CERT_A_SHA1);
  assert.equal(parseCertificate(derBase64(CERT_A))?.fingerprint.replaceAll(":", ""), CERT_A_SHA1);
  for (const text of ["", "garbage!", "AAAA", "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----"]) {
    assert.equal(parseCertificate(text), undefined, text);
  }
});

test("certificateInfo reports a certificate's facts the way DPS shows them", () => {
  const cert = parseCertificate(CERT_A);
  assert.ok(cert);
  assert.deepEqual(certificateInfo(cert), expectedInfoA);
});
