// A device twin as stored (iothub-api.md §5). The rules that change it live in builtin-hub/twin.ts.
import type { JsonObject } from "./json.js";

/** $metadata tree: every node has $lastUpdated; desired nodes also $lastUpdatedVersion. */
export interface MetadataNode {
  $lastUpdated: string;
  $lastUpdatedVersion?: number;
  [child: string]: MetadataNode | string | number | undefined;
}

export interface TwinSection {
  properties: JsonObject;
  metadata: MetadataNode;
  version: number;
}

export interface TwinState {
  /** Twin etag: base64 of a 64-bit big-endian counter (a fresh twin has "AAAAAAAAAAE="). */
  etag: string;
  etagCounter: number;
  /** Twin version covering tags + desired. */
  version: number;
  tags: JsonObject;
  desired: TwinSection;
  reported: TwinSection;
}
