// The activation blob opened as a TPM would open it (ActivateCredential with the EK, then Import
// under the SRK; tpm-attestation.md §6-8), in software with the test keys' private halves: every
// wrapper, integrity value and binding is checked, and the HMAC key comes out.
import assert from "node:assert/strict";
import { constants, createDecipheriv, createHash, createHmac, privateDecrypt } from "node:crypto";
import { test } from "node:test";
import { activationBlob, MAX_HMAC_KEY_BYTES } from "../../../src/attestation/tpm/activation-blob.js";
import { kdfa } from "../../../src/attestation/tpm/kdfa.js";
import { parseRsaPublic, TpmKeyError, tpmName } from "../../../src/attestation/tpm/tpm-public.js";
import { type TestTpmKey, testEndorsementKey, testStorageRootKey } from "./tpm-keys.js";

const ek = testEndorsementKey();
const srk = testStorageRootKey();

/** Reads TPM2B fields in order. */
function fields(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; ) {
    const n = bytes.readUInt16BE(at);
    out.push(bytes.subarray(at + 2, at + 2 + n));
    at += 2 + n;
    assert.ok(at <= bytes.length, "a field runs past the end");
  }
  return out;
}
const unCfb = (key: Buffer, data: Buffer) => {
  const d = createDecipheriv(`aes-${key.length * 8}-cfb`, key, Buffer.alloc(16));
  return Buffer.concat([d.update(data), d.final()]);
};
const oaepOpen = (key: TestTpmKey, label: string, data: Buffer) =>
  privateDecrypt(
    {
      key: key.privateKey,
      padding: constants.RSA_PKCS1_OAEP_PADDING,
      oaepHash: "sha256",
      oaepLabel: Buffer.from(`${label}\0`),
    },
    data,
  );
const hmac = (key: Buffer, ...parts: Buffer[]) =>
  parts.reduce((h, p) => h.update(p), createHmac("sha256", key)).digest();
const none = Buffer.alloc(0);

/** What the TPM does with the blob; resolves to the imported HMAC key's bytes. */
function openAsTpm(blob: Buffer): Buffer {
  const [idObject, secret, privateBlob, inSymSeed, publicArea, uri, ...rest] = fields(blob);
  assert.ok(idObject && secret && privateBlob && inSymSeed && publicArea && uri);
  assert.equal(rest.length, 0, "six fields, nothing after them");
  assert.equal(uri.length, 0);
  // ActivateCredential(activate = SRK, key = EK): bound to the SRK's Name.
  const srkName = tpmName(srk.tpm2b.subarray(2));
  const seed1 = oaepOpen(ek, "IDENTITY", secret);
  const [integrity, ...encIdentityParts] = [fields(idObject.subarray(0, 34))[0], idObject.subarray(34)];
  const encIdentity = encIdentityParts[0] ?? none;
  assert.deepEqual(integrity, hmac(kdfa(seed1, "INTEGRITY", none, none, 256), encIdentity, srkName));
  const [innerKey] = fields(unCfb(kdfa(seed1, "STORAGE", srkName, none, 128), encIdentity));
  assert.equal(innerKey?.length, 16, "an AES-128 inner key, as the C SDK imports it");
  // Import(parent = SRK, encryptionKey = innerKey).
  const name = tpmName(publicArea);
  const seed2 = oaepOpen(srk, "DUPLICATE", inSymSeed);
  const outerHmac = fields(privateBlob.subarray(0, 34))[0];
  const dupSensitive = privateBlob.subarray(34);
  assert.deepEqual(outerHmac, hmac(kdfa(seed2, "INTEGRITY", none, none, 256), dupSensitive, name));
  const encSensitive = unCfb(kdfa(seed2, "STORAGE", name, none, 128), dupSensitive);
  const inner = unCfb(innerKey ?? none, encSensitive);
  const innerIntegrity = fields(inner.subarray(0, 34))[0];
  const sensitive2b = inner.subarray(34);
  assert.deepEqual(innerIntegrity, createHash("sha256").update(sensitive2b).update(name).digest());
  const [sensitive] = fields(sensitive2b);
  assert.ok(sensitive);
  assert.equal(sensitive.readUInt16BE(0), 0x0008, "KEYEDHASH");
  const [authValue, seedValue, keyBytes] = fields(sensitive.subarray(2));
  assert.equal(authValue?.length, 0);
  assert.ok(seedValue && keyBytes);
  // The public area: KEYEDHASH, HMAC-SHA256 scheme, unique = H(seedValue ‖ key).
  assert.equal(publicArea.length, 80);
  assert.equal(publicArea.readUInt16BE(0), 0x0008);
  assert.equal(publicArea.readUInt32BE(4) & 0x00000032, 0, "not fixedTPM, fixedParent or sensitiveDataOrigin");
  assert.equal(publicArea.readUInt16BE(8), 32, "the duplication policy");
  assert.equal(publicArea.readUInt16BE(42), 0x0005, "an HMAC scheme");
  assert.equal(publicArea.readUInt16BE(44), 0x000b, "with SHA-256: the SDK signs with the scheme's hash");
  assert.deepEqual(publicArea.subarray(48), createHash("sha256").update(seedValue).update(keyBytes).digest());
  return keyBytes;
}

test("KDFa matches the spec's vector (SP800-108 counter mode, not HKDF)", () => {
  const out = kdfa(
    Buffer.alloc(32, 1),
    "STORAGE",
    Buffer.concat([Buffer.from("000b", "hex"), Buffer.alloc(32, 0x11)]),
    none,
    128,
  );
  assert.equal(out.toString("hex"), "42cee45d5bb82244643a575b02c996b4");
  assert.equal(kdfa(Buffer.alloc(32, 1), "INTEGRITY", none, none, 512).length, 64, "more than one block");
});

test("the EK and SRK templates parse; the Name hashes the public area as sent", () => {
  const parsed = parseRsaPublic(ek.tpm2b, "endorsement key");
  assert.equal(parsed.symmetricBits, 128);
  assert.deepEqual(parsed.name.subarray(0, 2), Buffer.from("000b", "hex"));
  assert.deepEqual(parsed.publicArea, ek.tpm2b.subarray(2));
  assert.equal(ek.tpm2b.length, 316, "the SDK's EK is 316 bytes");
  assert.equal(srk.tpm2b.length, 284, "the SDK's SRK is 284 bytes");
});

test("keys that are not RSA storage keys are refused with a reason", () => {
  const ecc = Buffer.from(ek.tpm2b);
  ecc.writeUInt16BE(0x0023, 2);
  assert.throws(
    () => parseRsaPublic(ecc, "endorsement key"),
    (e: Error) => e instanceof TpmKeyError && /only RSA/.test(e.message),
  );
  assert.throws(() => parseRsaPublic(ek.tpm2b.subarray(0, 100), "endorsement key"), /ends early/);
  assert.throws(
    () => parseRsaPublic(Buffer.concat([ek.tpm2b, Buffer.from([0])]), "endorsement key"),
    /after its TPM2B_PUBLIC/,
  );
  const sha1 = Buffer.from(ek.tpm2b);
  sha1.writeUInt16BE(0x0004, 4);
  assert.throws(
    () => parseRsaPublic(sha1, "storage root key"),
    /storage root key is not a usable TPM key: its name algorithm/,
  );
});

test("a blob carries the key to the TPM of that EK, bound to that SRK, for 1 to 64 bytes", () => {
  const ekPublic = parseRsaPublic(ek.tpm2b, "endorsement key");
  const srkPublic = parseRsaPublic(srk.tpm2b, "storage root key");
  for (const n of [1, 16, 32, MAX_HMAC_KEY_BYTES]) {
    const key = Buffer.alloc(n, n);
    const blob = activationBlob(ekPublic, srkPublic, key);
    assert.deepEqual(openAsTpm(blob), key);
    if (n === 32) assert.equal(blob.length, 798, "the size the SDKs were seen to accept");
  }
  assert.throws(() => activationBlob(ekPublic, srkPublic, Buffer.alloc(65)), RangeError);
  assert.throws(() => activationBlob(ekPublic, srkPublic, Buffer.alloc(0)), RangeError);
});

test("every blob is fresh, and another EK cannot open it", () => {
  const ekPublic = parseRsaPublic(ek.tpm2b, "endorsement key");
  const srkPublic = parseRsaPublic(srk.tpm2b, "storage root key");
  const key = Buffer.alloc(32, 7);
  assert.notDeepEqual(activationBlob(ekPublic, srkPublic, key), activationBlob(ekPublic, srkPublic, key));
  const other = testEndorsementKey();
  const blob = activationBlob(parseRsaPublic(other.tpm2b, "endorsement key"), srkPublic, key);
  assert.throws(() => openAsTpm(blob), /decrypt|oaep/i);
});
