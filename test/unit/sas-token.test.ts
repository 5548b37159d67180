// SAS tokens (service-api.md §9.2): parsing in every client's field order, signing, the robust
// signature check, expiry with clock skew and the resource a token names. Pure: no I/O.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { test } from "node:test";
import {
  CLOCK_SKEW_SECONDS,
  createSasToken,
  isExpired,
  parseSasToken,
  type SasToken,
  sign,
  signatureMatches,
  tokenResource,
} from "../../src/attestation/sas-token.js";

/** base64 of 32 bytes of 0x01. */
const KEY = Buffer.alloc(32, 0x01).toString("base64");
const OTHER_KEY = Buffer.alloc(32, 0x02).toString("base64");
const SE = 1795377444;

/** The reference MAC, computed here without the module under test. */
const hmac = (keyBase64: string, sr: string, se: number): string =>
  createHmac("sha256", Buffer.from(keyBase64, "base64")).update(`${sr}\n${se}`).digest("base64");

/** A signature with '+', '/' and '=' so URL-encoding matters. */
const SIG = "ab+cd/ef+gh/ij+kl/mn+op/qr+st/uv+wx/yz01234=";
const SIG_ENCODED = encodeURIComponent(SIG);

test("a SAS token's fields are parsed in any order", () => {
  const expected: SasToken = {
    sr: "mydps.azure-devices-provisioning.net",
    sig: SIG,
    se: SE,
    skn: "provisioningserviceowner",
  };
  const sr = `sr=${expected.sr}`;
  const sig = `sig=${SIG_ENCODED}`;
  const se = `se=${SE}`;
  const skn = "skn=provisioningserviceowner";
  const orders = {
    node: [sr, sig, skn, se],
    csharp: [sr, sig, se, skn],
    docs: [sig, se, skn, sr],
  };
  for (const [client, fields] of Object.entries(orders)) {
    assert.deepEqual(parseSasToken(`SharedAccessSignature ${fields.join("&")}`), expected, client);
  }
});

test("the SharedAccessSignature prefix is matched case-insensitively", () => {
  for (const prefix of [
    "SharedAccessSignature",
    "sharedaccesssignature",
    "SHAREDACCESSSIGNATURE",
    "sharedAccessSignature",
  ]) {
    const token = parseSasToken(`${prefix} sr=localhost&sig=${SIG_ENCODED}&se=${SE}`);
    assert.ok(token, prefix);
    assert.equal(token.sr, "localhost");
  }
});

test("a token without the SharedAccessSignature prefix is not parsed", () => {
  assert.equal(parseSasToken(`sr=localhost&sig=${SIG_ENCODED}&se=${SE}`), undefined);
  assert.equal(parseSasToken(`Bearer sr=localhost&sig=${SIG_ENCODED}&se=${SE}`), undefined);
  assert.equal(parseSasToken("SharedAccessSignature"), undefined);
  assert.equal(parseSasToken(""), undefined);
});

test("field names are matched case-insensitively", () => {
  assert.deepEqual(parseSasToken(`SharedAccessSignature SR=localhost&Sig=${SIG_ENCODED}&SE=${SE}&SKN=owner`), {
    sr: "localhost",
    sig: SIG,
    se: SE,
    skn: "owner",
  });
});

test("sig is URL-decoded; sr is kept exactly as it appears in the token", () => {
  const token = parseSasToken(
    `SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fx&sig=${SIG_ENCODED}&se=${SE}`,
  );
  assert.ok(token);
  assert.equal(token.sig, SIG);
  assert.equal(token.sr, "myhub.azure-devices.net%2Fdevices%2Fx");
});

test("an unencoded sig with '=' padding is parsed: each field splits at its first '='", () => {
  const token = parseSasToken(`SharedAccessSignature sr=localhost&sig=${SIG}&se=${SE}`);
  assert.ok(token);
  assert.equal(token.sig, SIG);
});

test("skn is optional and URL-decoded when present", () => {
  const without = parseSasToken(`SharedAccessSignature sr=localhost&sig=${SIG_ENCODED}&se=${SE}`);
  assert.ok(without);
  assert.equal("skn" in without, false);
  const withSpace = parseSasToken(`SharedAccessSignature sr=localhost&sig=${SIG_ENCODED}&se=${SE}&skn=my%20policy`);
  assert.equal(withSpace?.skn, "my policy");
});

test("a token missing sr, sig or se is not parsed", () => {
  assert.equal(parseSasToken(`SharedAccessSignature sig=${SIG_ENCODED}&se=${SE}&skn=owner`), undefined);
  assert.equal(parseSasToken(`SharedAccessSignature sr=localhost&se=${SE}&skn=owner`), undefined);
  assert.equal(parseSasToken(`SharedAccessSignature sr=localhost&sig=${SIG_ENCODED}&skn=owner`), undefined);
  assert.equal(parseSasToken(`SharedAccessSignature sr=&sig=${SIG_ENCODED}&se=${SE}`), undefined);
  assert.equal(parseSasToken(`SharedAccessSignature sr=localhost&sig=&se=${SE}`), undefined);
});

test("a field without '=' or with an empty name makes the token unparsable", () => {
  assert.equal(parseSasToken(`SharedAccessSignature sr=localhost&sig=${SIG_ENCODED}&se=${SE}&junk`), undefined);
  assert.equal(parseSasToken(`SharedAccessSignature sr=localhost&sig=${SIG_ENCODED}&se=${SE}&=x`), undefined);
});

test("a non-numeric se is not parsed", () => {
  for (const se of ["abc", "12.5", "-5", "1e9", "0x10", "", " 1795377444", "1234567890123"]) {
    assert.equal(parseSasToken(`SharedAccessSignature sr=localhost&sig=${SIG_ENCODED}&se=${se}`), undefined, se);
  }
});

test("a sig with bad percent-encoding is not parsed", () => {
  for (const sig of ["abc%", "abc%2", "abc%ZZ", "%E0%A4%A"]) {
    assert.equal(parseSasToken(`SharedAccessSignature sr=localhost&sig=${sig}&se=${SE}`), undefined, sig);
  }
});

test("sign is base64(HMAC-SHA256(base64-decoded key, sr + '\\n' + se))", () => {
  const expected = hmac(KEY, "localhost", SE);
  assert.equal(sign(KEY, "localhost", SE), expected);
  assert.equal(Buffer.from(expected, "base64").length, 32);
  assert.notEqual(sign(OTHER_KEY, "localhost", SE), expected);
  assert.notEqual(sign(KEY, "localhost", SE + 1), expected);
});

test("createSasToken builds a token that parses back and verifies", () => {
  const text = createSasToken(KEY, "localhost", SE, "provisioningserviceowner");
  assert.match(text, /^SharedAccessSignature sr=localhost&sig=[^&]+&se=1795377444&skn=provisioningserviceowner$/);
  const token = parseSasToken(text);
  assert.ok(token);
  assert.equal(token.sig, hmac(KEY, "localhost", SE));
  assert.ok(signatureMatches(token, [KEY]));
});

const tokenFor = (sr: string, sig: string, se = SE): SasToken => ({ sr, sig, se });

test("a signature over the raw sr is accepted (Node)", () => {
  assert.ok(signatureMatches(tokenFor("localhost", hmac(KEY, "localhost", SE)), [KEY]));
  const host = "MyDps.azure-devices-provisioning.net";
  assert.ok(signatureMatches(tokenFor(host, hmac(KEY, host, SE)), [KEY]));
});

test("a signature over a URL-encoded sr is accepted (C#)", () => {
  const encoded = "myhub.azure-devices.net%2Fdevices%2Fx";
  // C# signs the encoded spelling that appears in the token.
  assert.ok(signatureMatches(tokenFor(encoded, hmac(KEY, encoded, SE)), [KEY]));
  // A client that sends the encoded form but signed the decoded one.
  assert.ok(signatureMatches(tokenFor(encoded, hmac(KEY, "myhub.azure-devices.net/devices/x", SE)), [KEY]));
  // A client that sends the decoded form but signed the encoded one.
  assert.ok(signatureMatches(tokenFor("myhub.azure-devices.net/devices/x", hmac(KEY, encoded, SE)), [KEY]));
});

test("a signature over the lower-cased sr is accepted (docs)", () => {
  const sent = "MyHub.Azure-Devices.net/devices/X";
  assert.ok(signatureMatches(tokenFor(sent, hmac(KEY, sent.toLowerCase(), SE)), [KEY]));
  const encodedLower = encodeURIComponent(sent.toLowerCase());
  assert.ok(signatureMatches(tokenFor(sent, hmac(KEY, encodedLower, SE)), [KEY]));
});

test("a signature under a different key is rejected", () => {
  assert.equal(signatureMatches(tokenFor("localhost", hmac(OTHER_KEY, "localhost", SE)), [KEY]), false);
});

test("a signature over a different se or a different sr is rejected", () => {
  assert.equal(signatureMatches(tokenFor("localhost", hmac(KEY, "localhost", SE + 1)), [KEY]), false);
  assert.equal(signatureMatches(tokenFor("localhost", hmac(KEY, "otherhost", SE)), [KEY]), false);
});

test("a truncated signature is rejected", () => {
  const good = hmac(KEY, "localhost", SE);
  assert.equal(signatureMatches(tokenFor("localhost", good.slice(0, -4)), [KEY]), false);
  assert.equal(signatureMatches(tokenFor("localhost", good.slice(0, -2)), [KEY]), false);
  assert.equal(signatureMatches(tokenFor("localhost", good.slice(0, 20)), [KEY]), false);
  assert.equal(signatureMatches(tokenFor("localhost", ""), [KEY]), false);
});

test("a signature sent without its '=' padding still carries the same 32 bytes and is accepted", () => {
  const good = hmac(KEY, "localhost", SE);
  assert.ok(good.endsWith("="));
  assert.ok(signatureMatches(tokenFor("localhost", good.replace(/=+$/, "")), [KEY]));
});

test("a signature of the wrong length is rejected", () => {
  const good = Buffer.from(hmac(KEY, "localhost", SE), "base64");
  const longer = Buffer.concat([good, Buffer.of(0)]).toString("base64");
  const shorter = good.subarray(0, 31).toString("base64");
  const sha512ish = Buffer.concat([good, good]).toString("base64");
  for (const sig of [longer, shorter, sha512ish]) {
    assert.equal(signatureMatches(tokenFor("localhost", sig), [KEY]), false, sig);
  }
});

test("both keys of a policy are tried", () => {
  const bySecondary = tokenFor("localhost", hmac(OTHER_KEY, "localhost", SE));
  assert.ok(signatureMatches(bySecondary, [KEY, OTHER_KEY]));
  const byPrimary = tokenFor("localhost", hmac(KEY, "localhost", SE));
  assert.ok(signatureMatches(byPrimary, [KEY, OTHER_KEY]));
  assert.equal(signatureMatches(bySecondary, [KEY]), false);
  assert.equal(signatureMatches(bySecondary, []), false);
});

test("a token is expired only once se plus the skew window has passed", () => {
  assert.equal(CLOCK_SKEW_SECONDS, 300);
  const token = tokenFor("localhost", "x", SE);
  assert.equal(isExpired(token, SE - 3600), false);
  assert.equal(isExpired(token, SE), false);
  assert.equal(isExpired(token, SE + CLOCK_SKEW_SECONDS), false);
  assert.equal(isExpired(token, SE + CLOCK_SKEW_SECONDS + 1), true);
  assert.equal(isExpired(token, SE + 86_400), true);
});

test("tokenResource URL-decodes, strips the scheme and lower-cases", () => {
  assert.equal(
    tokenResource(tokenFor("https://MyDps.Azure-Devices-Provisioning.net", "x")),
    "mydps.azure-devices-provisioning.net",
  );
  assert.equal(tokenResource(tokenFor("HTTPS://LocalHost", "x")), "localhost");
  assert.equal(tokenResource(tokenFor("http://localhost", "x")), "localhost");
  assert.equal(
    tokenResource(tokenFor("MyHub.azure-devices.net%2Fdevices%2FX", "x")),
    "myhub.azure-devices.net/devices/x",
  );
  assert.equal(tokenResource(tokenFor("https%3A%2F%2FMyDps.net", "x")), "mydps.net");
  assert.equal(tokenResource(tokenFor("localhost", "x")), "localhost");
});

test("tokenResource keeps an sr with bad percent-encoding as sent, lower-cased", () => {
  assert.equal(tokenResource(tokenFor("Host%ZZ", "x")), "host%zz");
});
