// Operation ids shaped like real DPS ones: `{digit}.{16 hex}.{uuid}` (device-api.md §2).
// The SDK copies them unencoded into paths and topics, so they stay within [0-9a-f.-].
import { randomUUID } from "node:crypto";

let sequence = 0;

// The 16 hex digits are the creation time in ms (12) and a wrapping counter (4): ids made later
// sort later, so the operations table's key index grows at its end instead of at random pages
// (≈ 10 µs less SQLite work per registration). The uuid keeps ids unguessable; randomUUID draws
// from a pooled buffer, where randomBytes would call into OpenSSL every time (~0.6 vs ~5.5 µs).
export const newOperationId = (now = Date.now()): string => {
  sequence = (sequence + 1) & 0xffff;
  return `4.${now.toString(16).padStart(12, "0")}${sequence.toString(16).padStart(4, "0")}.${randomUUID()}`;
};
