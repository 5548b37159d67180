// Device-twin logic for the built-in hub (iothub-api.md §5, §6.5, §6.6). Pure: no I/O, the clock is passed in.
import { isDeepStrictEqual } from "node:util";
import type { JsonObject, JsonValue } from "../domain/json.js";
import { isObject } from "../domain/json.js";
import type { MetadataNode, TwinSection, TwinState } from "../domain/twin-state.js";

// The stored shapes live in domain/twin-state.ts (the store needs them); re-exported for callers of the rules.
export type { JsonObject, JsonValue, MetadataNode, TwinSection, TwinState };

export class TwinError extends Error {
  constructor(
    readonly status: 400 | 412,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "TwinError";
  }
}

export const TWIN_LIMITS = {
  tagsBytes: 8 * 1024,
  propertiesBytes: 32 * 1024,
  keyBytes: 1024,
  depth: 10,
  maxInteger: 4503599627370495,
} as const;

const invalid = (message: string): TwinError => new TwinError(400, "ArgumentInvalid", message);
const byteLength = (s: string): number => Buffer.byteLength(s, "utf8");
const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  isObject(v) && [Object.prototype, null].includes(Object.getPrototypeOf(v));

/** Assignment via defineProperty so a "__proto__" key stays an ordinary property (no prototype pollution). */
function setKey<T>(target: { [k: string]: T }, key: string, value: T): void {
  Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
}

function etagFor(counter: number): string {
  const buf = Buffer.alloc(8);
  buf.writeBigUInt64BE(BigInt(counter));
  return buf.toString("base64");
}

function stamp(now: string, version: number | undefined): MetadataNode {
  return version === undefined ? { $lastUpdated: now } : { $lastUpdated: now, $lastUpdatedVersion: version };
}

export function newTwin(now: string): TwinState {
  return {
    etag: etagFor(1),
    etagCounter: 1,
    version: 1,
    tags: {},
    desired: { properties: {}, metadata: stamp(now, 1), version: 1 },
    reported: { properties: {}, metadata: stamp(now, undefined), version: 1 },
  };
}

export function etagMatchesTwin(ifMatch: string | undefined, twin: TwinState): boolean {
  if (ifMatch === undefined) return true;
  return ifMatch.split(",").some((raw) => {
    let tag = raw.trim();
    if (tag.startsWith("W/")) tag = tag.slice(2);
    if (tag.length >= 2 && tag.startsWith('"') && tag.endsWith('"')) tag = tag.slice(1, -1);
    return tag === "*" || tag === twin.etag;
  });
}

const pathText = (path: string[]): string => path.join(".") || "(root)";

/**
 * Validates a patch value and returns a copy with $-prefixed object keys dropped (they are echoes of
 * $metadata/$version, ignored by the hub). Inside arrays nothing is dropped: arrays are opaque values,
 * so a '$' key there is an error. Depth: the section root is 0, the value of a top-level key is 1, ...;
 * a container (object/array) deeper than TWIN_LIMITS.depth is rejected.
 */
function sanitize(value: unknown, path: string[], inArray: boolean): JsonValue {
  if (value === null || typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw invalid(`number at '${pathText(path)}' is not finite`);
    if (Number.isInteger(value) && Math.abs(value) > TWIN_LIMITS.maxInteger) {
      throw invalid(`integer at '${pathText(path)}' is outside ±${TWIN_LIMITS.maxInteger}`);
    }
    return value;
  }
  const isArray = Array.isArray(value);
  if (!isArray && !isPlainObject(value)) throw invalid(`value at '${pathText(path)}' is not valid JSON`);
  if (path.length > TWIN_LIMITS.depth) {
    throw invalid(`nesting depth exceeds ${TWIN_LIMITS.depth} at '${pathText(path)}'`);
  }
  if (isArray) return value.map((v, i) => sanitize(v, [...path, `[${i}]`], true));
  const out: JsonObject = {};
  for (const [key, v] of Object.entries(value)) {
    if (key.startsWith("$") && !inArray) continue;
    if (byteLength(key) > TWIN_LIMITS.keyBytes) {
      throw invalid(`key '${key.slice(0, 32)}...' at '${pathText(path)}' is longer than ${TWIN_LIMITS.keyBytes} bytes`);
    }
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is forbidden
    const bad = /[.$ \u0000-\u001f\u007f]/.exec(key);
    if (bad) {
      const what = bad[0] === " " ? "space" : bad[0] === "." || bad[0] === "$" ? `'${bad[0]}'` : "a control character";
      throw invalid(`key '${key}' at '${pathText(path)}' contains ${what}`);
    }
    if (v === undefined) throw invalid(`value at '${pathText([...path, key])}' is not valid JSON`);
    setKey(out, key, sanitize(v, [...path, key], inArray));
  }
  return out;
}

function sanitizeSection(value: unknown, name: string): JsonObject {
  if (!isObject(value)) throw invalid(`${name} must be a JSON object`);
  return sanitize(value, [], false) as JsonObject; // an object in gives an object out
}

function checkSize(props: JsonObject, name: string, limit: number): void {
  const size = byteLength(JSON.stringify(props));
  if (size > limit) throw invalid(`${name} is ${size} bytes, over the ${limit}-byte limit`);
}

/** JSON merge of a sanitized patch into target (mutated), stamping metadata of every touched node and its parents. */
function mergeInto(target: JsonObject, meta: MetadataNode, patch: JsonObject, now: string, ver?: number): void {
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) {
      delete target[key];
      delete meta[key];
    } else if (isObject(value)) {
      // Own-property reads only: an inherited "__proto__" must never be merged into.
      const current = Object.hasOwn(target, key) ? target[key] : undefined;
      const currentMeta = Object.hasOwn(meta, key) ? meta[key] : undefined;
      const child: JsonObject = isObject(current) ? current : {};
      const childMeta = isObject(current) && typeof currentMeta === "object" ? currentMeta : stamp(now, ver);
      mergeInto(child, childMeta, value, now, ver);
      setKey(target, key, child);
      setKey<MetadataNode | string | number | undefined>(meta, key, childMeta);
    } else {
      setKey(target, key, structuredClone(value));
      setKey<MetadataNode | string | number | undefined>(meta, key, stamp(now, ver));
    }
  }
  meta.$lastUpdated = now;
  if (ver !== undefined) meta.$lastUpdatedVersion = ver;
}

function bumpEtag(twin: TwinState): void {
  twin.etagCounter += 1;
  twin.etag = etagFor(twin.etagCounter);
}

/** Reads {tags?, properties?: {desired?}} from a service body; reported is rejected for PATCH, ignored for PUT. */
function serviceParts(body: unknown, rejectReported: boolean): { tags?: JsonObject; desired?: JsonObject } {
  if (!isObject(body)) throw invalid("twin patch body must be a JSON object");
  const parts: { tags?: JsonObject; desired?: JsonObject } = {};
  if (body.tags !== undefined) parts.tags = sanitizeSection(body.tags, "tags");
  if (body.properties !== undefined) {
    if (!isObject(body.properties)) throw invalid("properties must be a JSON object");
    if (rejectReported && body.properties.reported !== undefined) {
      throw invalid("properties.reported cannot be written by the service");
    }
    if (body.properties.desired !== undefined) {
      parts.desired = sanitizeSection(body.properties.desired, "properties.desired");
    }
  }
  return parts;
}

export function applyServicePatch(
  twin: TwinState,
  patch: unknown,
  now: string,
): { twin: TwinState; desiredPatch?: JsonObject } {
  const { tags, desired } = serviceParts(patch, true);
  const tagsTouched = tags !== undefined && Object.keys(tags).length > 0;
  const desiredTouched = desired !== undefined && Object.keys(desired).length > 0;
  const next = structuredClone(twin);
  if (!tagsTouched && !desiredTouched) return { twin: next };
  if (tags && tagsTouched) {
    mergeInto(next.tags, { $lastUpdated: now }, tags, now); // tags carry no metadata: scratch node
    checkSize(next.tags, "tags", TWIN_LIMITS.tagsBytes);
  }
  next.version += 1;
  bumpEtag(next);
  if (!desired || !desiredTouched) return { twin: next };
  next.desired.version += 1;
  mergeInto(next.desired.properties, next.desired.metadata, desired, now, next.desired.version);
  checkSize(next.desired.properties, "properties.desired", TWIN_LIMITS.propertiesBytes);
  return { twin: next, desiredPatch: desired };
}

/** Merge patch turning `from` into `to`: removed keys as null, objects diffed recursively, the rest replaced. */
function diff(from: JsonObject, to: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const key of Object.keys(from)) if (!Object.hasOwn(to, key)) setKey(out, key, null);
  for (const [key, value] of Object.entries(to)) {
    const old = from[key];
    if (!Object.hasOwn(from, key) || old === undefined) setKey(out, key, structuredClone(value));
    else if (isObject(old) && isObject(value)) {
      const sub = diff(old, value);
      if (Object.keys(sub).length > 0) setKey(out, key, sub);
    } else if (!isDeepStrictEqual(old, value)) setKey(out, key, structuredClone(value));
  }
  return out;
}

/** A full document from a sanitized body: null values mean "absent". */
function document(value: JsonObject | undefined): JsonObject {
  const doc: JsonObject = {};
  if (value) mergeInto(doc, { $lastUpdated: "" }, value, "");
  return doc;
}

export function applyServiceReplace(
  twin: TwinState,
  body: unknown,
  now: string,
): { twin: TwinState; desiredPatch?: JsonObject } {
  const parts = serviceParts(body, false);
  const tags = document(parts.tags);
  const desired = document(parts.desired);
  checkSize(tags, "tags", TWIN_LIMITS.tagsBytes);
  checkSize(desired, "properties.desired", TWIN_LIMITS.propertiesBytes);
  const next = structuredClone(twin);
  const tagsChanged = !isDeepStrictEqual(next.tags, tags);
  const desiredPatch = diff(next.desired.properties, desired);
  const desiredChanged = Object.keys(desiredPatch).length > 0;
  if (!tagsChanged && !desiredChanged) return { twin: next };
  next.tags = tags;
  next.version += 1;
  bumpEtag(next);
  if (!desiredChanged) return { twin: next };
  next.desired.version += 1;
  // Applying the diff (rather than swapping the document) keeps metadata of untouched nodes.
  mergeInto(next.desired.properties, next.desired.metadata, desiredPatch, now, next.desired.version);
  return { twin: next, desiredPatch };
}

export function applyReportedPatch(twin: TwinState, patch: unknown, now: string): TwinState {
  const reported = sanitizeSection(patch, "reported properties patch");
  const next = structuredClone(twin);
  if (Object.keys(reported).length === 0) return next;
  next.reported.version += 1;
  bumpEtag(next);
  mergeInto(next.reported.properties, next.reported.metadata, reported, now);
  checkSize(next.reported.properties, "properties.reported", TWIN_LIMITS.propertiesBytes);
  return next;
}

function sectionJson(section: TwinSection, withMetadata: boolean): JsonObject {
  const out = structuredClone(section.properties);
  // MetadataNode is JSON (no undefined values)
  if (withMetadata) out.$metadata = structuredClone(section.metadata) as JsonObject;
  out.$version = section.version;
  return out;
}

/** The service's view of the twin's properties, with `$metadata` (iothub-api.md §5). */
export function twinPropertiesJson(twin: TwinState): JsonObject {
  return { desired: sectionJson(twin.desired, true), reported: sectionJson(twin.reported, true) };
}

/**
 * What a device's twin GET returns: IoT Hub sends devices the properties and `$version`s
 * without `$metadata`, so an app reading the whole desired document sees only its own keys.
 */
export function deviceTwinPropertiesJson(twin: TwinState): JsonObject {
  return { desired: sectionJson(twin.desired, false), reported: sectionJson(twin.reported, false) };
}

export function desiredNotification(desiredPatch: JsonObject, twin: TwinState): JsonObject {
  const out = structuredClone(desiredPatch);
  out.$version = twin.desired.version;
  return out;
}
