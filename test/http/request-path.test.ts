import assert from "node:assert/strict";
import { test } from "node:test";
import { ProvisioError } from "../../src/domain/errors.js";
import { hostOf, parseRequestPath } from "../../src/http/request-path.js";

test("segments are percent-decoded where encoded and kept as sent otherwise", () => {
  const p = parseRequestPath("/0ne000A1B2C/registrations/Dev%20One/register?api-version=2021-06-01");
  assert.deepEqual(p.segments, ["0ne000A1B2C", "registrations", "Dev One", "register"]);
  assert.deepEqual(p.lower, ["0ne000a1b2c", "registrations", "dev one", "register"]);
});

test("empty segments and a trailing slash are ignored", () => {
  assert.deepEqual(parseRequestPath("//enrollments//abc/").segments, ["enrollments", "abc"]);
  assert.deepEqual(parseRequestPath("/").segments, []);
});

test("the query string is parsed when read, and only the query", () => {
  const p = parseRequestPath("/devices/a%2Fb?deviceId=x%20y&api-version=1");
  assert.deepEqual(p.segments, ["devices", "a/b"]);
  assert.equal(p.query.get("deviceId"), "x y");
  assert.equal(p.query, p.query);
  assert.equal(parseRequestPath("/devices").query.toString(), "");
});

test("bad percent-encoding is a DPS error naming the segment", () => {
  assert.throws(
    () => parseRequestPath("/enrollments/%E0%A4%A"),
    (e: unknown) => e instanceof ProvisioError && e.status === 400 && /%E0%A4%A/.test(e.message),
  );
});

test("hostOf drops the port and lower-cases, IPv6 literals included", () => {
  assert.equal(hostOf("Provisio.Example:8443"), "provisio.example");
  assert.equal(hostOf("[::1]:443"), "[::1]");
  assert.equal(hostOf(undefined), "");
});
