// A TPM's public keys as DPS devices send them (tpm-attestation.md §2, §8.1): the endorsement key
// and the storage root key, each a marshalled TPM2B_PUBLIC. Pure: bytes in, facts out.
import { createHash, createPublicKey, type KeyObject } from "node:crypto";

export const TPM_ALG_RSA = 0x0001;
export const TPM_ALG_SHA256 = 0x000b;
export const TPM_ALG_AES = 0x0006;
export const TPM_ALG_CFB = 0x0043;
export const TPM_ALG_NULL = 0x0010;

/** An RSA storage key (EK or SRK) as far as building an activation blob needs it. */
export interface TpmRsaPublic {
  /** The TPMT_PUBLIC bytes exactly as the device sent them: its Name hashes these. */
  readonly publicArea: Buffer;
  /** `nameAlg ‖ SHA-256(publicArea)`: what a credential or a duplicate is bound to. */
  readonly name: Buffer;
  /** The key's symmetric definition: AES-CFB with this many bits (128 for the SDKs' templates). */
  readonly symmetricBits: number;
  readonly rsa: KeyObject;
}

/** Why a key cannot be used; the message is safe to tell the device. */
export class TpmKeyError extends Error {}

/** Reads big-endian fields off a buffer, refusing to read past its end. */
class Reader {
  #at = 0;
  constructor(private readonly bytes: Buffer) {}
  get done(): boolean {
    return this.#at === this.bytes.length;
  }
  u16(): number {
    this.need(2);
    const v = this.bytes.readUInt16BE(this.#at);
    this.#at += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.bytes.readUInt32BE(this.#at);
    this.#at += 4;
    return v;
  }
  sized(): Buffer {
    const n = this.u16();
    this.need(n);
    const v = this.bytes.subarray(this.#at, this.#at + n);
    this.#at += n;
    return v;
  }
  private need(n: number): void {
    if (this.#at + n > this.bytes.length) throw new TpmKeyError("the key ends early");
  }
}

/** The Name of a public area: `u16(SHA-256) ‖ SHA-256(TPMT_PUBLIC)` (TPM 2.0 Part 1, §16). */
export function tpmName(publicArea: Buffer): Buffer {
  const alg = Buffer.alloc(2);
  alg.writeUInt16BE(TPM_ALG_SHA256);
  return Buffer.concat([alg, createHash("sha256").update(publicArea).digest()]);
}

/**
 * Parses an RSA TPM2B_PUBLIC with SHA-256 names and an AES-CFB symmetric definition: the EK and
 * SRK templates of every Azure SDK. Anything else (ECC keys among them) is a TpmKeyError.
 */
export function parseRsaPublic(tpm2b: Buffer, which: string): TpmRsaPublic {
  try {
    const outer = new Reader(tpm2b);
    const publicArea = outer.sized();
    if (!outer.done) throw new TpmKeyError("it carries bytes after its TPM2B_PUBLIC");
    const r = new Reader(publicArea);
    if (r.u16() !== TPM_ALG_RSA) throw new TpmKeyError("only RSA keys are supported");
    if (r.u16() !== TPM_ALG_SHA256) throw new TpmKeyError("its name algorithm must be SHA-256");
    r.u32(); // objectAttributes
    r.sized(); // authPolicy
    const symmetric = r.u16();
    if (symmetric !== TPM_ALG_AES) throw new TpmKeyError("its symmetric definition must be AES-CFB");
    const symmetricBits = r.u16();
    if (r.u16() !== TPM_ALG_CFB || ![128, 192, 256].includes(symmetricBits)) {
      throw new TpmKeyError("its symmetric definition must be AES-CFB");
    }
    if (r.u16() !== TPM_ALG_NULL) r.u16(); // scheme and its hash
    const keyBits = r.u16();
    const exponent = r.u32() || 65537;
    const modulus = r.sized();
    if (!r.done) throw new TpmKeyError("its public area has bytes after the modulus");
    if (modulus.length * 8 !== keyBits || keyBits < 2048) {
      throw new TpmKeyError("its modulus must be at least 2048 bits and match keyBits");
    }
    const e = Buffer.alloc(4);
    e.writeUInt32BE(exponent);
    const rsa = createPublicKey({
      format: "jwk",
      key: {
        kty: "RSA",
        n: modulus.toString("base64url"),
        e: e.subarray(e.findIndex((b) => b !== 0)).toString("base64url"),
      },
    });
    return { publicArea: Buffer.from(publicArea), name: tpmName(publicArea), symmetricBits, rsa };
  } catch (err) {
    // Our own reasons, or node:crypto's about the modulus: either way the device's key, not a bug.
    throw new TpmKeyError(`The ${which} is not a usable TPM key: ${(err as Error).message}.`);
  }
}
