// Test TPM keys: RSA key pairs marshalled as the Azure SDKs' EK and SRK templates
// (tpm-attestation.md §2), with the private halves a software "TPM" needs to open a blob.
import { generateKeyPairSync, type KeyObject } from "node:crypto";

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
