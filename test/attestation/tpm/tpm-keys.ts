// Test TPM keys: RSA key pairs marshalled as the Azure SDKs' EK and SRK templates
// (tpm-attestation.md §2), with the private halves a software "TPM" needs to open a blob.
import assert from "node:assert/strict";
import {
  constants,
  createDecipheriv,
  createHash,
  createHmac,
  generateKeyPairSync,
  type KeyObject,
  privateDecrypt,
} from "node:crypto";
import { kdfa } from "../../../src/attestation/tpm/kdfa.js";
import { tpmName } from "../../../src/attestation/tpm/tpm-public.js";

const EK_POLICY = Buffer.from("837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa", "hex");

export interface TestTpmKey {
  /** The TPM2B_PUBLIC a device sends (base64 in its register body). */
  tpm2b: Buffer;
  privateKey: KeyObject;
}

function marshal(modulus: Buffer, attributes: number, policy: Buffer): Buffer {
  const w: Buffer[] = [];
  const u16 = (n: number) => {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(n);
    w.push(b);
  };
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    w.push(b);
  };
  u16(0x0001); // RSA
  u16(0x000b); // SHA-256
  u32(attributes);
  u16(policy.length);
  w.push(policy);
  u16(0x0006); // AES
  u16(128);
  u16(0x0043); // CFB
  u16(0x0010); // scheme NULL
  u16(modulus.length * 8);
  u32(0); // exponent 65537
  u16(modulus.length);
  w.push(modulus);
  const area = Buffer.concat(w);
  const size = Buffer.alloc(2);
  size.writeUInt16BE(area.length);
  return Buffer.concat([size, area]);
}

function rsaKey(attributes: number, policy: Buffer): TestTpmKey {
  const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const n = Buffer.from(publicKey.export({ format: "jwk" }).n ?? "", "base64url");
  return { tpm2b: marshal(n, attributes, policy), privateKey };
}

/** An endorsement key as the SDKs create it (restricted decrypt, admin policy PolicySecret(endorsement)). */
export const testEndorsementKey = (): TestTpmKey => rsaKey(0x000300b2, EK_POLICY);
/** A storage root key as the SDKs create it (restricted decrypt, userWithAuth, noDA). */
export const testStorageRootKey = (): TestTpmKey => rsaKey(0x00030472, Buffer.alloc(0));

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

/**
 * What a TPM does with an activation blob (ActivateCredential with the EK, then Import under the
 * SRK), in software with the private halves; asserts every binding and returns the HMAC key.
 */
export function openBlobInSoftware(ek: TestTpmKey, srk: TestTpmKey, blob: Buffer): Buffer {
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
