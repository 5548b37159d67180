// KDFa of TPM 2.0 Part 1 §11.4.10.2: SP800-108 counter mode with HMAC-SHA256. Not HKDF. Pure.
import { createHmac } from "node:crypto";

/** `bits` of key material from `key`, `label` (a NUL is appended), and the two contexts. */
export function kdfa(key: Buffer, label: string, contextU: Buffer, contextV: Buffer, bits: number): Buffer {
  const bytes = Math.ceil(bits / 8);
  const suffix = Buffer.alloc(4);
  suffix.writeUInt32BE(bits);
  const fixed = Buffer.concat([Buffer.from(`${label}\0`, "latin1"), contextU, contextV, suffix]);
  const out: Buffer[] = [];
  for (let i = 1, have = 0; have < bytes; i++) {
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(i);
    const block = createHmac("sha256", key).update(counter).update(fixed).digest();
    out.push(block);
    have += block.length;
  }
  return Buffer.concat(out).subarray(0, bytes);
}
