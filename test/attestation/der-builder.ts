// DER for test fixtures: definite, minimal lengths; contents as buffers or hex.
export function tlv(tag: number, ...contents: (Buffer | string)[]): Buffer {
  const body = Buffer.concat(contents.map((c) => (typeof c === "string" ? Buffer.from(c, "hex") : c)));
  const n = body.length;
  const length = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...length]), body]);
}

export const seq = (...contents: (Buffer | string)[]): Buffer => tlv(0x30, ...contents);
