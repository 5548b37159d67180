// Request bodies: bounded reads with DPS-shaped errors (JSON itself: domain/json.ts).
import type { IncomingMessage } from "node:http";
import { ProvisioError } from "../domain/errors.js";
import { MAX_MESSAGE_BYTES } from "../domain/json.js";

/** Read the whole body, refusing (without buffering further) once it passes `limit`. */
export function readBody(req: IncomingMessage, limit = MAX_MESSAGE_BYTES): Promise<Buffer> {
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
