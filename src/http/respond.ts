// Responses: JSON bodies with the content type the SDKs parse, and DPS error bodies
// (service-api.md §1, §8).
import type { ServerResponse } from "node:http";
import { errorBody, ProvisioError, toProvisioError } from "../domain/errors.js";

const JSON_TYPE = "application/json; charset=utf-8";

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": JSON_TYPE,
    "Content-Length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

export function sendNoContent(res: ServerResponse): void {
  res.writeHead(204);
  res.end();
}

/** Turn any thrown value into a DPS error reply; unknown errors become 500001. */
export function sendError(res: ServerResponse, err: unknown, onInternal?: (err: unknown) => void): void {
  const e = toProvisioError(err);
  if (!(err instanceof ProvisioError)) onInternal?.(err);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const headers: Record<string, string> = { "x-ms-error-code": String(e.errorCode) };
  if (e.retryAfterSeconds !== undefined) headers["Retry-After"] = String(e.retryAfterSeconds);
  if (e.status === 413) closeAfterReply(res, headers);
  sendJson(res, e.status, errorBody(e), headers);
}

/**
 * A refused oversized request ends its connection: the rest of its body is never read (a client
 * that keeps trickling it would otherwise hold the socket for minutes).
 */
export function closeAfterReply(res: ServerResponse, headers: Record<string, string>): void {
  headers.connection = "close";
  res.once("finish", () => res.socket?.destroy());
}
