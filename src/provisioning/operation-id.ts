// Operation ids shaped like real DPS ones: `{digit}.{16 hex}.{uuid}` (device-api.md §2).
// The SDK copies them unencoded into paths and topics, so they stay within [0-9a-f.-].
import { randomBytes, randomUUID } from "node:crypto";

export const newOperationId = (): string => `4.${randomBytes(8).toString("hex")}.${randomUUID()}`;
