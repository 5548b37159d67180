// The activation blob opened as a TPM would open it (ActivateCredential with the EK, then Import
// under the SRK; tpm-attestation.md §6-8), in software with the test keys' private halves: every
// wrapper, integrity value and binding is checked, and the HMAC key comes out.
import assert from "node:assert/strict";
import { test } from "node:test";
import { activationBlob, MAX_HMAC_KEY_BYTES } from "../../../src/attestation/tpm/activation-blob.js";
import { kdfa } from "../../../src/attestation/tpm/kdfa.js";
import { parseRsaPublic, TpmKeyError } from "../../../src/attestation/tpm/tpm-public.js";
import { openBlobInSoftware, testEndorsementKey, testStorageRootKey } from "./tpm-keys.js";

const ek = testEndorsementKey();
const srk = testStorageRootKey();
const none = Buffer.alloc(0);

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
    assert.deepEqual(openBlobInSoftware(ek, srk, blob), key);
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
  // OpenSSL refuses it (its message depends on the bytes): only the enrolled EK opens the blob.
  assert.throws(() => openBlobInSoftware(ek, srk, blob));
});
