// ETags, service-api.md §4.8 and §6: base64 of a quoted GUID-like string, compared verbatim
// after stripping one pair of surrounding quotes.
import { randomUUID } from "node:crypto";

export const newEtag = (): string => Buffer.from(`"${randomUUID()}"`).toString("base64");

const unquote = (s: string): string => (s.length >= 2 && s.startsWith('"') && s.endsWith('"') ? s.slice(1, -1) : s);

/** Does an If-Match value accept the stored etag? `*` accepts any existing version. */
export const etagMatches = (ifMatch: string, stored: string): boolean =>
  ifMatch.trim() === "*" || unquote(ifMatch.trim()) === unquote(stored);

/** UTC ISO-8601 with `Z` (service-api.md §4.8). */
export const nowUtc = (): string => new Date().toISOString();
