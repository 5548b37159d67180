// Query paging headers and query specifications (service-api.md §3.5, §10.4).
import assert from "node:assert/strict";
import { test } from "node:test";
import { ProvisioError } from "../../src/domain/errors.js";
import {
  continuationToken,
  DEFAULT_PAGE_SIZE,
  MAX_PAGE_SIZE,
  pageHeaders,
  pageRequest,
} from "../../src/http/paging.js";

const isProvisioError = (code: number) => (e: unknown) => e instanceof ProvisioError && e.errorCode === code;

test("a query without x-ms-max-item-count gets the default page size", () => {
  assert.equal(DEFAULT_PAGE_SIZE, 100);
  assert.deepEqual(pageRequest({}), { limit: DEFAULT_PAGE_SIZE });
  assert.deepEqual(pageRequest({ "x-ms-max-item-count": "" }), { limit: DEFAULT_PAGE_SIZE });
});

test("x-ms-max-item-count from 1 to the maximum is the page size", () => {
  assert.equal(MAX_PAGE_SIZE, 1000);
  assert.equal(pageRequest({ "x-ms-max-item-count": "1" }).limit, 1);
  assert.equal(pageRequest({ "x-ms-max-item-count": "25" }).limit, 25);
  assert.equal(pageRequest({ "x-ms-max-item-count": String(MAX_PAGE_SIZE) }).limit, MAX_PAGE_SIZE);
});

test("x-ms-max-item-count outside 1 to the maximum, or not a whole number, is 400012", () => {
  for (const value of ["0", "-1", String(MAX_PAGE_SIZE + 1), "1.5", "abc", "10abc", "Infinity", "NaN"]) {
    assert.throws(() => pageRequest({ "x-ms-max-item-count": value }), isProvisioError(400012), value);
  }
  assert.throws(() => pageRequest({ "x-ms-max-item-count": "0" }), /Invalid x-ms-max-item-count header/);
});

test("a repeated header is read from its first value", () => {
  // IncomingHttpHeaders types most headers as string, but a raw header can arrive as an array.
  const headers = { "x-ms-max-item-count": ["5", "7"] } as unknown as Parameters<typeof pageRequest>[0];
  assert.equal(pageRequest(headers).limit, 5);
});

test("a continuation token round-trips to the same key", () => {
  for (const key of ["device-1", "a", "group:with.dots_and-hyphens", "ünïcødé", "k:nested-prefix", "x".repeat(128)]) {
    const token = continuationToken(key);
    assert.match(token, /^[A-Za-z0-9_-]+$/, "a token is base64url: safe in a header");
    assert.deepEqual(pageRequest({ "x-ms-continuation": token }), { limit: DEFAULT_PAGE_SIZE, after: key }, key);
  }
  assert.deepEqual(pageRequest({ "x-ms-continuation": continuationToken("d"), "x-ms-max-item-count": "3" }), {
    limit: 3,
    after: "d",
  });
});

test("an empty x-ms-continuation means the first page", () => {
  assert.deepEqual(pageRequest({ "x-ms-continuation": "" }), { limit: DEFAULT_PAGE_SIZE });
});

test("a continuation token this service did not issue is 400011", () => {
  for (const token of ["garbage", "not-a-token", Buffer.from("device-1").toString("base64url"), "!!!"]) {
    assert.throws(() => pageRequest({ "x-ms-continuation": token }), isProvisioError(400011), token);
  }
  assert.throws(
    () => pageRequest({ "x-ms-continuation": "garbage" }),
    (e: unknown) => e instanceof ProvisioError && e.status === 400 && /x-ms-continuation/.test(e.message),
  );
});

test("page headers carry the item type, the page size and the next token", () => {
  const h = pageHeaders("Enrollment", "device-7", 10);
  assert.equal(h["x-ms-item-type"], "Enrollment");
  assert.equal(h["x-ms-max-item-count"], "10");
  assert.equal(h["x-ms-continuation"], continuationToken("device-7"));
  assert.equal(pageRequest({ "x-ms-continuation": h["x-ms-continuation"] }).after, "device-7");
});

test("the last page omits x-ms-continuation entirely (never empty)", () => {
  const h = pageHeaders("Enrollment", undefined, 100);
  assert.equal("x-ms-continuation" in h, false);
  assert.deepEqual(h, { "x-ms-item-type": "Enrollment", "x-ms-max-item-count": "100" });
});
