// The `authenticationKey` DPS gives a TPM device (tpm-attestation.md §7-8): an HMAC key (the
// challenge key, or later the hub device key) that only the TPM holding the endorsement key can
// import under its storage root key. Built in software: a credential for the EK bound to the SRK's
// Name (MakeCredential) carries an AES key, and that key is the inner wrapper of the HMAC key's
// duplicate for the SRK (Duplicate). Pure apart from fresh randomness.
import { constants, createCipheriv, createHash, createHmac, publicEncrypt, randomBytes } from "node:crypto";
import { kdfa } from "./kdfa.js";
import { TPM_ALG_SHA256, type TpmRsaPublic, tpmName } from "./tpm-public.js";

const TPM_ALG_KEYEDHASH = 0x0008;
const TPM_ALG_HMAC = 0x0005;
/** sign | userWithAuth | noDA: not fixedTPM or fixedParent (it is a duplicate), not sensitiveDataOrigin. */
const HMAC_KEY_ATTRIBUTES = 0x00040440;
/** The C SDK imports with AES-128 whatever the key's length says (tpm-attestation.md §6). */
const INNER_KEY_BYTES = 16;
/** TPM_RC_KEY_SIZE above this (tpm-attestation.md §8.6). */
export const MAX_HMAC_KEY_BYTES = 64;

const u16 = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
};
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
/** A TPM2B: the bytes behind their 16-bit length. */
export const tpm2b = (bytes: Buffer): Buffer => Buffer.concat([u16(bytes.length), bytes]);

const sha256 = (...parts: Buffer[]): Buffer => {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest();
};
const hmac = (key: Buffer, ...parts: Buffer[]): Buffer => {
  const h = createHmac("sha256", key);
  for (const p of parts) h.update(p);
  return h.digest();
};
/** TPM CFB: AES in 128-bit-segment CFB mode with a zero IV. */
export const aesCfb = (key: Buffer, data: Buffer): Buffer => {
  const cipher = createCipheriv(`aes-${key.length * 8}-cfb`, key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(data), cipher.final()]);
};
/** RSA-OAEP with SHA-256 and a TPM label (its trailing NUL included). */
const oaep = (key: TpmRsaPublic, label: string, seed: Buffer): Buffer =>
  publicEncrypt(
    {
      key: key.rsa,
      padding: constants.RSA_PKCS1_OAEP_PADDING,
      oaepHash: "sha256",
      oaepLabel: Buffer.from(`${label}\0`),
    },
    seed,
  );

/**
 * The HMAC key's policy: PolicyCommandCode(TPM_CC_Duplicate), as in Microsoft's DPS samples
 * (tpm-attestation.md §7); the key can be duplicated again, never used otherwise without auth.
 */
const DUPLICATE_POLICY = Buffer.from("bef56b8c1cc84e11edd717528d2cd99356bd2bbf8f015209c3f84aeeaba8e8a2", "hex");

/** The KEYEDHASH object's TPMT_PUBLIC (80 bytes): HMAC-SHA256, unique = H(seedValue ‖ key). */
export function hmacKeyPublic(seedValue: Buffer, keyBytes: Buffer): Buffer {
  return Buffer.concat([
    u16(TPM_ALG_KEYEDHASH),
    u16(TPM_ALG_SHA256),
    u32(HMAC_KEY_ATTRIBUTES),
    tpm2b(DUPLICATE_POLICY),
    u16(TPM_ALG_HMAC),
    u16(TPM_ALG_SHA256),
    tpm2b(sha256(seedValue, keyBytes)),
  ]);
}

/** MakeCredential: `credential` for the EK, bound to `objectName`. Items 1 and 2 of the blob. */
function makeCredential(
  ek: TpmRsaPublic,
  objectName: Buffer,
  credential: Buffer,
): { idObject: Buffer; secret: Buffer } {
  const seed = randomBytes(32);
  const secret = oaep(ek, "IDENTITY", seed);
  const symKey = kdfa(seed, "STORAGE", objectName, Buffer.alloc(0), ek.symmetricBits);
  const encIdentity = aesCfb(symKey, tpm2b(credential));
  const hmacKey = kdfa(seed, "INTEGRITY", Buffer.alloc(0), Buffer.alloc(0), 256);
  const integrity = hmac(hmacKey, encIdentity, objectName);
  return { idObject: tpm2b(Buffer.concat([tpm2b(integrity), encIdentity])), secret: tpm2b(secret) };
}

/** Duplicate of the HMAC key for the SRK with `innerKey` as the inner wrapper. Items 3-5 of the blob. */
function duplicate(srk: TpmRsaPublic, innerKey: Buffer, keyBytes: Buffer) {
  const seedValue = randomBytes(32);
  const publicArea = hmacKeyPublic(seedValue, keyBytes);
  const name = tpmName(publicArea);
  const sensitive = tpm2b(
    Buffer.concat([u16(TPM_ALG_KEYEDHASH), tpm2b(Buffer.alloc(0)), tpm2b(seedValue), tpm2b(keyBytes)]),
  );
  const encSensitive = aesCfb(innerKey, Buffer.concat([tpm2b(sha256(sensitive, name)), sensitive]));
  const seed = randomBytes(32);
  const inSymSeed = oaep(srk, "DUPLICATE", seed);
  const symKey = kdfa(seed, "STORAGE", name, Buffer.alloc(0), srk.symmetricBits);
  const dupSensitive = aesCfb(symKey, encSensitive);
  const outerHmac = hmac(kdfa(seed, "INTEGRITY", Buffer.alloc(0), Buffer.alloc(0), 256), dupSensitive, name);
  return {
    duplicate: tpm2b(Buffer.concat([tpm2b(outerHmac), dupSensitive])),
    inSymSeed: tpm2b(inSymSeed),
    publicArea: tpm2b(publicArea),
  };
}

/**
 * The blob that carries `keyBytes` (1-64 bytes) to the TPM holding `ek`, importable under `srk`:
 * TPM2B_ID_OBJECT ‖ TPM2B_ENCRYPTED_SECRET ‖ TPM2B_PRIVATE ‖ TPM2B_ENCRYPTED_SECRET ‖
 * TPM2B_PUBLIC ‖ TPM2B_DATA (empty), as every Azure SDK parses it (tpm-attestation.md §7).
 */
export function activationBlob(ek: TpmRsaPublic, srk: TpmRsaPublic, keyBytes: Buffer): Buffer {
  if (keyBytes.length < 1 || keyBytes.length > MAX_HMAC_KEY_BYTES) {
    throw new RangeError(`a TPM HMAC key has 1-${MAX_HMAC_KEY_BYTES} bytes, not ${keyBytes.length}`);
  }
  const innerKey = randomBytes(INNER_KEY_BYTES);
  const credential = makeCredential(ek, srk.name, innerKey);
  const dup = duplicate(srk, innerKey, keyBytes);
  return Buffer.concat([
    credential.idObject,
    credential.secret,
    dup.duplicate,
    dup.inSymSeed,
    dup.publicArea,
    tpm2b(Buffer.alloc(0)),
  ]);
}
