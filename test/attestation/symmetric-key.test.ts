// Symmetric-key group attestation (attestation/symmetric-key.ts; behaviors.md §2.1, §3 step 4): the
// group whose derived key signs the token, whichever spelling of the id and of `sr` the device signed with.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import type { AttestationOutcome } from "../../src/attestation/attestation-outcome.js";
import { createSasToken } from "../../src/attestation/sas-token.js";
import { attestSymmetricKey, deriveDeviceKey, symmetricKeyGroups } from "../../src/attestation/symmetric-key.js";
import type { EnrollmentGroup, ProvisioningStatus } from "../../src/domain/enrollment.js";
import { symmetricKeysOf } from "../../src/domain/enrollment.js";
import type { EnrollmentGroupId, IdScope } from "../../src/domain/ids.js";

const SCOPE = "0ne00000001" as IdScope;
const key = (): string => randomBytes(32).toString("base64");

function group(id: string, primaryKey = key(), status: ProvisioningStatus = "enabled"): EnrollmentGroup {
  return {
    enrollmentGroupId: id as EnrollmentGroupId,
    attestation: { type: "symmetricKey", symmetricKey: { primaryKey, secondaryKey: key() } },
    provisioningStatus: status,
    etag: '"1"',
    createdDateTimeUtc: "2025-01-01T00:00:00Z",
    lastUpdatedDateTimeUtc: "2025-01-01T00:00:00Z",
  };
}

const primaryOf = (g: EnrollmentGroup): string => symmetricKeysOf(g.attestation)?.primaryKey ?? "";
const expiry = (): number => Math.floor(Date.now() / 1000) + 3600;

/** A device token signed with the key derived from `group`'s primary key for `derivedFor`, over `sr`. */
const tokenFor = (g: EnrollmentGroup, derivedFor: string, sr: string): string =>
  createSasToken(deriveDeviceKey(primaryOf(g), derivedFor), sr, expiry(), "registration");

function attest(registrationId: string, token: string, groups: EnrollmentGroup[]): AttestationOutcome {
  return attestSymmetricKey({
    idScope: SCOPE,
    registrationId,
    token,
    individual: undefined,
    groups: symmetricKeyGroups(groups),
    nowSeconds: Math.floor(Date.now() / 1000),
  });
}

function matchedGroup(outcome: AttestationOutcome): string {
  assert.equal(outcome.kind, "attested", "expected an attested device");
  assert.ok(outcome.kind === "attested");
  assert.equal(outcome.match.kind, "group");
  return outcome.match.kind === "group" ? outcome.match.group.enrollmentGroupId : "";
}

/** The keys the hub identity gets. */
function keysOf(outcome: AttestationOutcome): { primaryKey: string } | undefined {
  return outcome.kind === "attested" && outcome.credential.kind === "keys" ? outcome.credential : undefined;
}

describe("symmetric-key groups: the group whose derived key signs the token", () => {
  const groups = [group("g-a"), group("g-b"), group("g-c")];
  const sr = `${SCOPE}/registrations/dev-1`;

  test("a device of the last group is found, with the keys derived for it", () => {
    const outcome = attest("dev-1", tokenFor(groups[2] as EnrollmentGroup, "dev-1", sr), groups);
    assert.equal(matchedGroup(outcome), "g-c");
    assert.equal(keysOf(outcome)?.primaryKey, deriveDeviceKey(primaryOf(groups[2] as EnrollmentGroup), "dev-1"));
  });

  test("a token signed over another spelling of sr is found after every group was tried as sent", () => {
    const encoded = encodeURIComponent(sr);
    assert.equal(
      matchedGroup(attest("dev-1", tokenFor(groups[1] as EnrollmentGroup, "dev-1", encoded), groups)),
      "g-b",
    );
  });

  test("a mixed-case id whose key was derived from the lower-cased id is found, with the keys it holds", () => {
    const g = groups[2] as EnrollmentGroup;
    const outcome = attest("Dev-1", tokenFor(g, "dev-1", `${SCOPE}/registrations/Dev-1`), groups);
    assert.equal(matchedGroup(outcome), "g-c");
    assert.equal(keysOf(outcome)?.primaryKey, deriveDeviceKey(primaryOf(g), "dev-1"));
  });

  test("a disabled group gives disabled; a group later in the list is not tried instead", () => {
    const shared = key();
    const disabled = group("g-off", shared, "disabled");
    const outcome = attest("dev-1", tokenFor(disabled, "dev-1", sr), [groups[0] as EnrollmentGroup, disabled]);
    assert.equal(outcome.kind, "disabled");
    assert.ok(outcome.kind === "disabled");
    assert.equal(outcome.match.kind === "group" && outcome.match.group.enrollmentGroupId, "g-off");
  });

  test("no group's derived key signs the token: refused (401 on the wire)", () => {
    const stranger = group("g-stranger");
    const outcome = attest("dev-1", tokenFor(stranger, "dev-1", sr), groups);
    assert.equal(outcome.kind, "refused");
    assert.match(outcome.kind === "refused" ? outcome.reason : "", /no group's derived key/);
  });
});
