// Domain rules: etags (service-api.md §6), identifiers (behaviors.md §1, management.md §1.2),
// policy rights (management.md §3, service-api.md §9.3) and connection strings (management.md §2-3).
import assert from "node:assert/strict";
import { test } from "node:test";
import { formatConnectionString, parseConnectionString } from "../../src/domain/connection-string.js";
import { ProvisioError } from "../../src/domain/errors.js";
import { etagMatches, newEtag, nowUtc } from "../../src/domain/etag.js";
import {
  enrollmentGroupId,
  idKey,
  idScopeFromBytes,
  isIdScope,
  isValidDeviceId,
  isValidInstanceName,
  isValidRegistrationId,
  registrationId,
} from "../../src/domain/ids.js";
import { formatRights, grants, parseRights, RIGHTS, type Right } from "../../src/domain/instance.js";

const isProvisioError = (code: number) => (e: unknown) => e instanceof ProvisioError && e.errorCode === code;

// --- etags ---

test("an If-Match etag matches the stored etag with or without quotes", () => {
  const stored = "IjAwMDAwNGVkLTAwMDAtMDgwMC0wMDAwLTY0NjgwMWU1MDAwMCI=";
  assert.ok(etagMatches(stored, stored));
  assert.ok(etagMatches(`"${stored}"`, stored));
  assert.ok(etagMatches(stored, `"${stored}"`));
  assert.ok(etagMatches(`"${stored}"`, `"${stored}"`));
  assert.ok(etagMatches(`  "${stored}" `, stored));
});

test("If-Match * matches any existing version", () => {
  assert.ok(etagMatches("*", "anything"));
  assert.ok(etagMatches(" * ", "anything"));
  assert.ok(etagMatches("*", newEtag()));
});

test("a different etag does not match", () => {
  assert.equal(etagMatches("AAAA", "AAAB"), false);
  assert.equal(etagMatches('"AAAA"', "AAAB"), false);
  assert.equal(etagMatches("aaaa", "AAAA"), false, "etags compare case-sensitively");
  assert.equal(etagMatches("", "AAAA"), false);
  assert.equal(etagMatches('"', "AAAA"), false);
});

test("only one pair of surrounding quotes is stripped", () => {
  assert.equal(etagMatches('""AAAA""', "AAAA"), false);
  assert.equal(etagMatches('""AAAA""', '"AAAA"'), false);
});

test("a new etag is base64 of a quoted GUID and differs every time", () => {
  const a = newEtag();
  const b = newEtag();
  assert.notEqual(a, b);
  assert.match(
    Buffer.from(a, "base64").toString("utf8"),
    /^"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"$/,
  );
});

test("timestamps are UTC ISO-8601 with Z", () => {
  assert.match(nowUtc(), /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
});

// --- registration and group ids (behaviors.md §1.1, §1.2) ---

test("a registration id uses A-Z a-z 0-9 - . _ : and ends with a letter, digit or '-'", () => {
  const valid = [
    "a",
    "Z",
    "7",
    "-",
    "device-1",
    "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6",
    "My.Device_01:port-",
    ".leading-dot-ok",
    "_leading_underscore1",
    ":colon:first9",
    "ends-with-hyphen-",
  ];
  for (const id of valid) assert.ok(isValidRegistrationId(id), id);
  const invalid = [
    "",
    "ends.",
    "ends_",
    "ends:",
    "has space",
    "slash/inside",
    "hash#",
    "plus+1",
    "at@1",
    "ümlaut",
    "tab\t1",
    "newline\n1",
    "1\n",
  ];
  for (const id of invalid) assert.equal(isValidRegistrationId(id), false, JSON.stringify(id));
});

test("a registration id is at most 128 characters", () => {
  assert.ok(isValidRegistrationId("a".repeat(128)));
  assert.ok(isValidRegistrationId(`${".".repeat(127)}a`));
  assert.equal(isValidRegistrationId("a".repeat(129)), false);
});

test("registrationId returns a valid id unchanged and rejects others with 400006", () => {
  assert.equal(registrationId("Device-1"), "Device-1");
  for (const bad of ["", "bad.", "a".repeat(129), 42, null, undefined, {}]) {
    assert.throws(() => registrationId(bad), isProvisioError(400006), String(bad));
  }
  assert.throws(() => registrationId("bad id"), /Registration id 'bad id' is invalid/);
});

test("enrollmentGroupId follows the registration id rule and rejects with 400007", () => {
  assert.equal(enrollmentGroupId("Group_A-1"), "Group_A-1");
  for (const bad of ["", "group.", "a".repeat(129), 7, null]) {
    assert.throws(() => enrollmentGroupId(bad), isProvisioError(400007), String(bad));
  }
  assert.throws(() => enrollmentGroupId("g/1"), /Enrollment group id 'g\/1' is invalid/);
});

test("ids are keyed case-insensitively", () => {
  assert.equal(idKey("Device-ONE"), "device-one");
  assert.equal(idKey("device-one"), idKey("DEVICE-ONE"));
});

// --- device ids (behaviors.md §1.3) ---

test("a device id is 1-128 of A-Z a-z 0-9 - . % _ * ? ! ( ) , : = @ $ '", () => {
  for (const id of ["d", "device-1", "a.b%c_d*e?f!g(h)i,j:k=l@m$n'o", "ends.", "x".repeat(128)]) {
    assert.ok(isValidDeviceId(id), id);
  }
  for (const id of ["", "x".repeat(129), "has space", "slash/", "hash#", "plus+", "amp&", "semi;", "ü", "back\\"]) {
    assert.equal(isValidDeviceId(id), false, id);
  }
});

// --- id scopes (behaviors.md §1.4) ---

test("an id scope is 0ne followed by 8 upper-case hex digits", () => {
  for (const s of ["0ne000956C5", "0ne00364DC0", "0neDEADBEEF", "0ne00000000"]) assert.ok(isIdScope(s), s);
  for (const s of ["0NE000956C5", "0ne000956c5", "0ne000956C", "0ne000956C51", "one000956C5", "0ne000956G5", ""]) {
    assert.equal(isIdScope(s), false, s);
  }
});

test("idScopeFromBytes formats the first 4 bytes as upper-case hex after 0ne", () => {
  assert.equal(idScopeFromBytes(Uint8Array.of(0xde, 0xad, 0xbe, 0xef)), "0neDEADBEEF");
  assert.equal(idScopeFromBytes(Uint8Array.of(0, 0, 0, 0)), "0ne00000000");
  assert.equal(idScopeFromBytes(Uint8Array.of(0x00, 0x09, 0x56, 0xc5, 0xff, 0xff)), "0ne000956C5");
  assert.ok(isIdScope(idScopeFromBytes(Uint8Array.of(0xab, 0xcd, 0xef, 0x01))));
});

// --- instance names (management.md §1.2) ---

test("an instance name is 3-50 letters, digits and hyphens, not all digits, no leading or trailing hyphen", () => {
  for (const name of ["abc", "my-dps", "DPS-01", "a-b", "123a", "a123", "1-2", "a".repeat(50)]) {
    assert.ok(isValidInstanceName(name), name);
  }
  for (const name of ["", "ab", "a".repeat(51), "-abc", "abc-", "123", "12345", "a_b", "a.b", "a b", "dps!"]) {
    assert.equal(isValidInstanceName(name), false, name);
  }
});

// --- rights (management.md §3, service-api.md §9.3) ---

test("rights are parsed case-insensitively with spaces around commas", () => {
  assert.deepEqual(parseRights("ServiceConfig, EnrollmentRead"), ["ServiceConfig", "EnrollmentRead"]);
  assert.deepEqual(parseRights("  enrollmentread ,ENROLLMENTWRITE  "), ["EnrollmentRead", "EnrollmentWrite"]);
  assert.deepEqual(parseRights("registrationstatusread,RegistrationStatusWrite,deviceconnect"), [
    "RegistrationStatusRead",
    "RegistrationStatusWrite",
    "DeviceConnect",
  ]);
});

test("duplicate rights are listed once, in first-seen order", () => {
  assert.deepEqual(parseRights("EnrollmentWrite, EnrollmentRead, enrollmentwrite, ENROLLMENTREAD"), [
    "EnrollmentWrite",
    "EnrollmentRead",
  ]);
});

test("empty entries between commas are skipped", () => {
  assert.deepEqual(parseRights("EnrollmentRead,,  ,DeviceConnect,"), ["EnrollmentRead", "DeviceConnect"]);
});

test("an unknown right or no right at all is not parsed", () => {
  assert.equal(parseRights("EnrollmentRead, Foo"), undefined);
  assert.equal(parseRights("Enrollment Read"), undefined);
  assert.equal(parseRights("RegistryWrite"), undefined);
  assert.equal(parseRights(""), undefined);
  assert.equal(parseRights(" , , "), undefined);
});

test("formatRights joins with ', ' and parses back", () => {
  assert.equal(formatRights(["ServiceConfig", "EnrollmentRead"]), "ServiceConfig, EnrollmentRead");
  assert.equal(formatRights([]), "");
  assert.deepEqual(parseRights(formatRights(RIGHTS)), [...RIGHTS]);
});

test("a policy grants the rights it lists", () => {
  const rights: Right[] = ["ServiceConfig", "DeviceConnect"];
  assert.ok(grants(rights, "ServiceConfig"));
  assert.ok(grants(rights, "DeviceConnect"));
  assert.equal(grants(rights, "EnrollmentRead"), false);
  assert.equal(grants([], "EnrollmentRead"), false);
});

test("a Write right implies the matching Read right", () => {
  assert.ok(grants(["EnrollmentWrite"], "EnrollmentRead"));
  assert.ok(grants(["RegistrationStatusWrite"], "RegistrationStatusRead"));
});

test("a Read right does not imply Write, and Write does not leak across resources", () => {
  assert.equal(grants(["EnrollmentRead"], "EnrollmentWrite"), false);
  assert.equal(grants(["RegistrationStatusRead"], "RegistrationStatusWrite"), false);
  assert.equal(grants(["EnrollmentWrite"], "RegistrationStatusRead"), false);
  assert.equal(grants(["RegistrationStatusWrite"], "EnrollmentRead"), false);
  assert.equal(grants(["ServiceConfig"], "EnrollmentRead"), false);
});

// --- connection strings (management.md §2-3) ---

const KEY_WITH_PADDING = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/abcd==";

test("a connection string's key keeps its '=' padding", () => {
  assert.deepEqual(
    parseConnectionString(
      `HostName=mydps.azure-devices-provisioning.net;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=${KEY_WITH_PADDING}`,
    ),
    { hostName: "mydps.azure-devices-provisioning.net", keyName: "provisioningserviceowner", key: KEY_WITH_PADDING },
  );
});

test("connection string fields are read in any order and any case", () => {
  const expected = { hostName: "localhost", keyName: "owner", key: KEY_WITH_PADDING };
  for (const text of [
    `SharedAccessKey=${KEY_WITH_PADDING};HostName=localhost;SharedAccessKeyName=owner`,
    `sharedaccesskeyname=owner;SHAREDACCESSKEY=${KEY_WITH_PADDING};hostname=localhost`,
    ` HostName = localhost ; SharedAccessKeyName=owner ; SharedAccessKey=${KEY_WITH_PADDING} ;`,
  ]) {
    assert.deepEqual(parseConnectionString(text), expected, text);
  }
});

test("unknown connection string fields are ignored", () => {
  assert.deepEqual(
    parseConnectionString(`HostName=h;DeviceId=d;SharedAccessKeyName=owner;SharedAccessKey=${KEY_WITH_PADDING}`),
    { hostName: "h", keyName: "owner", key: KEY_WITH_PADDING },
  );
});

test("a connection string missing a field is not parsed", () => {
  for (const text of [
    `SharedAccessKeyName=owner;SharedAccessKey=${KEY_WITH_PADDING}`,
    `HostName=h;SharedAccessKey=${KEY_WITH_PADDING}`,
    "HostName=h;SharedAccessKeyName=owner",
    `HostName=;SharedAccessKeyName=owner;SharedAccessKey=${KEY_WITH_PADDING}`,
    "HostName=h;SharedAccessKeyName=owner;SharedAccessKey=",
    "",
  ]) {
    assert.equal(parseConnectionString(text), undefined, text);
  }
});

test("a connection string part without a name is not parsed", () => {
  assert.equal(parseConnectionString(`HostName=h;SharedAccessKeyName=owner;SharedAccessKey=k;junk`), undefined);
  assert.equal(parseConnectionString(`HostName=h;SharedAccessKeyName=owner;SharedAccessKey=k;=x`), undefined);
});

test("formatConnectionString writes what parseConnectionString reads", () => {
  const c = { hostName: "mydps.azure-devices-provisioning.net", keyName: "owner", key: KEY_WITH_PADDING };
  const text = formatConnectionString(c);
  assert.equal(text, `HostName=${c.hostName};SharedAccessKeyName=owner;SharedAccessKey=${KEY_WITH_PADDING}`);
  assert.deepEqual(parseConnectionString(text), c);
});
