// Store failures that mean "cannot take writes now" become 503001 with a Retry-After on every
// transport (domain/errors.ts), whichever database reported them; others stay 500001.
import assert from "node:assert/strict";
import { test } from "node:test";
import { isStorageUnavailable, ProvisioError, toProvisioError } from "../../src/domain/errors.js";

const failure = (code: string) => Object.assign(new Error(code), { code });

test("SQLite's full, I/O and read-only codes, and PostgreSQL's, are 503001 with Retry-After 5", () => {
  for (const code of [
    "SQLITE_FULL",
    "SQLITE_IOERR",
    "SQLITE_IOERR_WRITE",
    "SQLITE_IOERR_FSYNC",
    "SQLITE_READONLY",
    "SQLITE_READONLY_DBMOVED",
    "53100",
    "25006",
    "08006",
    "57P01",
  ]) {
    assert.ok(isStorageUnavailable(failure(code)), code);
    const e = toProvisioError(failure(code));
    assert.equal(e.errorCode, 503001, code);
    assert.equal(e.status, 503);
    assert.equal(e.retryAfterSeconds, 5);
  }
});

test("other failures stay internal errors; catalogue errors pass through", () => {
  for (const code of ["SQLITE_CONSTRAINT_UNIQUE", "23505", "ECONNREFUSED", "SQLITE_BUSY"]) {
    assert.equal(toProvisioError(failure(code)).errorCode, 500001, code);
  }
  assert.equal(toProvisioError(new Error("boom")).errorCode, 500001);
  const throttled = new ProvisioError("throttled", {}, 3);
  assert.equal(toProvisioError(throttled), throttled);
});
