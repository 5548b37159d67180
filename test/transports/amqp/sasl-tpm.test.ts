// The SASL TPM grammar (tpm-attestation.md §10) from bytes, as the Node SDK's SaslTpm writes them.
import assert from "node:assert/strict";
import { test } from "node:test";
import { blobSegments, parseTpmInit, parseTpmResponse } from "../../../src/transports/amqp/sasl-tpm.js";

test("the init frame: 0 ‖ idScope ‖ 0 ‖ registrationId ‖ 0 ‖ EK (which may hold zero bytes)", () => {
  const ek = Buffer.from([0x01, 0x3a, 0x00, 0x01, 0x00, 0x0b]);
  const init = Buffer.concat([Buffer.from("\u00000ne00000A0A\u0000tpm-dev\u0000", "utf8"), ek]);
  assert.deepEqual(parseTpmInit(init), { idScope: "0ne00000A0A", registrationId: "tpm-dev", endorsementKey: ek });
  for (const bad of [
    undefined,
    Buffer.alloc(0),
    Buffer.from("x0ne\u0000id\u0000k"),
    Buffer.from("\u0000\u0000id\u0000k"),
    Buffer.from("\u00000ne\u0000\u0000k"),
    Buffer.from("\u00000ne\u0000id\u0000"),
  ]) {
    assert.equal(parseTpmInit(bad), undefined, String(bad));
  }
});

test("the device's answers: 0 ‖ payload", () => {
  assert.deepEqual(parseTpmResponse(Buffer.from([0, 1, 2])), Buffer.from([1, 2]));
  assert.equal(parseTpmResponse(Buffer.from([0])), undefined, "an acknowledgement carries nothing");
  assert.equal(parseTpmResponse(Buffer.from([1, 2])), undefined);
  assert.equal(parseTpmResponse(undefined), undefined);
});

test("the blob in segments: 0x80 before each but the last, 0xC0 before the last, nothing lost", () => {
  const blob = Buffer.from(Array.from({ length: 798 }, (_, i) => i % 256));
  const segments = blobSegments(blob, 400);
  assert.deepEqual(
    segments.map((s) => [s[0], s.length]),
    [
      [0x80, 401],
      [0xc0, 399],
    ],
  );
  assert.deepEqual(Buffer.concat(segments.map((s) => s.subarray(1))), blob);
  assert.deepEqual(
    blobSegments(Buffer.alloc(10), 400).map((s) => s[0]),
    [0xc0],
  );
});
