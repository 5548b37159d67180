// Query paging headers (service-api.md §3.5, §10.4): `x-ms-max-item-count` in,
// `x-ms-continuation` both ways, absent (never empty) on the last page.
import type { IncomingHttpHeaders } from "node:http";
import { ProvisioError } from "../domain/errors.js";
import type { PageRequest } from "../store/store.js";

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;
const TOKEN_PREFIX = "k:";

const header = (headers: IncomingHttpHeaders, name: string): string | undefined => {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
};

export const continuationToken = (key: string): string => Buffer.from(TOKEN_PREFIX + key).toString("base64url");

export function pageRequest(headers: IncomingHttpHeaders): PageRequest {
  const countText = header(headers, "x-ms-max-item-count");
  let limit = DEFAULT_PAGE_SIZE;
  if (countText !== undefined && countText !== "") {
    limit = /^\d{1,7}$/.test(countText) ? Number(countText) : Number.NaN;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
      throw new ProvisioError("invalidHeader", {
        header: "x-ms-max-item-count",
        detail: `use a whole number from 1 to ${MAX_PAGE_SIZE}`,
      });
    }
  }
  const token = header(headers, "x-ms-continuation");
  if (!token) return { limit };
  const decoded = Buffer.from(token, "base64url").toString("utf8");
  if (!decoded.startsWith(TOKEN_PREFIX)) throw new ProvisioError("invalidContinuation");
  return { limit, after: decoded.slice(TOKEN_PREFIX.length) };
}

/** Reply headers of one page. */
export function pageHeaders(itemType: string, next: string | undefined, limit: number): Record<string, string> {
  return {
    "x-ms-item-type": itemType,
    "x-ms-max-item-count": String(limit),
    ...(next !== undefined ? { "x-ms-continuation": continuationToken(next) } : {}),
  };
}

/**
 * `?prefix=` on a query (Provisio extension, for the console's search): the page starts just before
 * the first key with that prefix, and the listing ends at the first key without it. Keys are
 * lower-cased ids in byte order, so every key with the prefix sorts after the bound below.
 */
export function prefixedPage(page: PageRequest, prefix: string | undefined): PageRequest {
  if (!prefix) return page;
  const p = prefix.toLowerCase();
  const last = p.charCodeAt(p.length - 1);
  const below = `${p.slice(0, -1)}${String.fromCharCode(last - 1)}\uffff`;
  return page.after !== undefined && page.after > below ? page : { ...page, after: below };
}

/** The items of a prefixed page that have the prefix; no next page once one does not. */
export function keepPrefixed<T>(
  page: { items: T[]; next?: string | undefined },
  prefix: string | undefined,
  keyOf: (item: T) => string,
): { items: T[]; next?: string | undefined } {
  if (!prefix) return page;
  const p = prefix.toLowerCase();
  const items = page.items.filter((i) => keyOf(i).toLowerCase().startsWith(p));
  return items.length < page.items.length ? { items } : page;
}
