// JSON values as every layer reads them: one object test, one bounded parser. Pure.
import { ProvisioError } from "./errors.js";

export type JsonValue = string | number | boolean | null | JsonValue[] | { [k: string]: JsonValue };
export type JsonObject = { [k: string]: JsonValue };

/** A JSON object: not null, not an array. */
export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** The DPS message size limit (behaviors.md §9): 96 KB, for request bodies on every transport. */
export const MAX_MESSAGE_BYTES = 96 * 1024;

/** Deeper JSON is refused: nothing DPS or IoT Hub accepts nests this far, and deep values break JSON.stringify. */
export const MAX_JSON_DEPTH = 32;

/** Parse a JSON body; an empty body is `undefined`. Malformed or too deep: 400001. */
export function parseJson(body: Buffer): unknown {
  if (body.length === 0) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(body.toString("utf8"));
  } catch (err) {
    throw new ProvisioError("malformedJson", { detail: (err as Error).message });
  }
  if (depthExceeds(value, MAX_JSON_DEPTH)) {
    throw new ProvisioError("malformedJson", { detail: `values are nested deeper than ${MAX_JSON_DEPTH} levels` });
  }
  return value;
}

/** Iterative, so a hostile document cannot exhaust the stack here either. */
function depthExceeds(root: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[root, 0]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop() as [unknown, number];
    if (typeof value !== "object" || value === null) continue;
    if (depth >= max) return true;
    for (const child of Object.values(value))
      if (typeof child === "object" && child !== null) stack.push([child, depth + 1]);
  }
  return false;
}
