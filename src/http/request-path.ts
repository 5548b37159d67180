// Request targets: case-insensitive routing on percent-decoded segments, trailing slash
// tolerated, query string ignored except where an API reads it (service-api.md §11.2-3).
import { ProvisioError } from "../domain/errors.js";

export interface RequestPath {
  /** Percent-decoded segments, as sent. */
  segments: string[];
  /** The same, lower-cased, for matching. */
  lower: string[];
  /** The query string, parsed on first use: only some service and hub routes read it. */
  readonly query: URLSearchParams;
}

export function parseRequestPath(url: string): RequestPath {
  const q = url.indexOf("?");
  const pathPart = q < 0 ? url : url.slice(0, q);
  const segments: string[] = [];
  for (const raw of pathPart.split("/")) {
    if (raw === "") continue;
    if (!raw.includes("%")) {
      segments.push(raw); // nothing to decode: the common case, and decodeURIComponent is not free
      continue;
    }
    try {
      segments.push(decodeURIComponent(raw));
    } catch {
      throw new ProvisioError("invalidBody", { detail: `The path segment '${raw}' is not valid percent-encoding.` });
    }
  }
  // A loop, not `map`: see parseChain in attestation/x509-attestation.ts.
  const lower: string[] = [];
  for (const s of segments) lower.push(s.toLowerCase());
  let query: URLSearchParams | undefined;
  return {
    segments,
    lower,
    get query() {
      query ??= new URLSearchParams(q < 0 ? "" : url.slice(q + 1));
      return query;
    },
  };
}

/** The request's host name without port, lower-cased. */
export function hostOf(hostHeader: string | undefined): string {
  if (!hostHeader) return "";
  const h = hostHeader.trim().toLowerCase();
  if (h.startsWith("[")) return h.slice(0, h.indexOf("]") + 1);
  const colon = h.indexOf(":");
  return colon < 0 ? h : h.slice(0, colon);
}
