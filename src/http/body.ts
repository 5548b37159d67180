// Request bodies: bounded reads and JSON parsing with DPS-shaped errors.
import type { IncomingMessage } from "node:http";
import { ProvisioError } from "../domain/errors.js";

/** The DPS message size limit (behaviors.md §9): 96 KB. */
export const MAX_BODY_BYTES = 96 * 1024;

/** Read the whole body, refusing (without buffering further) once it passes `limit`. */
export function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Buffer> {
  const declared = Number(req.headers["content-length"]);
  if (declared > limit) {
    req.resume(); // drain so the connection can carry the error reply
    return Promise.reject(new ProvisioError("bodyTooLarge", { limit }));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on("data", (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > limit) {
        refused = true;
        chunks.length = 0;
        reject(new ProvisioError("bodyTooLarge", { limit }));
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      if (!refused) resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks));
    });
    req.on("error", reject);
  });
}

/** Deeper JSON is refused: nothing DPS or IoT Hub accepts nests this far, and deep values break JSON.stringify. */
export const MAX_JSON_DEPTH = 32;

/** Parse JSON; an empty body is `undefined`. */
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

export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);
