// Seeded fuzzing helpers shared by the MQTT fuzz suites: a small PRNG and a packet mutator.

/** mulberry32: small and seedable, so a failing seed reproduces. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One element of a non-empty list, chosen by `r`. */
export function pick<T>(r: () => number, xs: readonly T[]): T {
  const x = xs[Math.floor(r() * xs.length)];
  if (x === undefined) throw new Error("pick from an empty list");
  return x;
}

/**
 * 1-4 random edits of an encoded packet: flip or replace a byte, insert, delete, truncate, lie
 * about the remaining length, corrupt a string's length prefix, or glue a packet of `glue` behind.
 */
export function mutatePacket(r: () => number, input: Buffer, glue: readonly Buffer[]): Buffer {
  let bytes = Buffer.from(input);
  const ops = 1 + Math.floor(r() * 4);
  for (let i = 0; i < ops; i++) {
    const at = Math.floor(r() * (bytes.length + 1));
    const op = Math.floor(r() * 8);
    if (op === 0 && bytes.length > 0) {
      bytes[at % bytes.length] = (bytes[at % bytes.length] ?? 0) ^ (1 << Math.floor(r() * 8)); // flip a bit
    } else if (op === 1 && bytes.length > 0) {
      bytes[at % bytes.length] = Math.floor(r() * 256); // replace a byte
    } else if (op === 2) {
      const extra = Buffer.from(Array.from({ length: 1 + Math.floor(r() * 8) }, () => Math.floor(r() * 256)));
      bytes = Buffer.concat([bytes.subarray(0, at), extra, bytes.subarray(at)]); // insert
    } else if (op === 3) {
      bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1 + Math.floor(r() * 4))]); // delete
    } else if (op === 4) {
      bytes = bytes.subarray(0, at); // truncate
    } else if (op === 5 && bytes.length > 1) {
      bytes[1] = pick(r, [0x7f, 0xff, 0x00, 0x80, 0x01]); // lie about the remaining length
    } else if (op === 6 && bytes.length > 4) {
      // Corrupt one of the length-prefixed strings' length (topic, client id, username, ...).
      const off = 2 + Math.floor(r() * (bytes.length - 3));
      bytes.writeUInt16BE(pick(r, [0, 1, 0xffff, 0x7fff, bytes.length]), off);
    } else {
      bytes = Buffer.concat([bytes, pick(r, glue)]); // glue another valid packet behind
    }
  }
  return bytes;
}
