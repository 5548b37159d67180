// TPM attestation's decisions (attestation/tpm-attestation.ts), without a TPM: who is challenged,
// which token admits a device, and when a challenge no longer counts.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createSasToken } from "../../../src/attestation/sas-token.js";
import { attestTpm, endorsementKeyHash, type TpmInput } from "../../../src/attestation/tpm-attestation.js";
import { testEndorsementKey, testStorageRootKey } from "./tpm-keys.js";

const ek = testEndorsementKey().tpm2b;
const srk = testStorageRootKey().tpm2b;
const now = new Date("2026-06-01T12:00:00Z");
const challengeKey = Buffer.alloc(32, 7).toString("base64");
const enrollment = {
  registrationId: "tpm-dev",
  attestation: { type: "tpm", tpm: { endorsementKey: ek.toString("base64") } },
  provisioningStatus: "enabled",
} as unknown as TpmInput["enrollment"];
const challenge = {
  key: challengeKey,
  endorsementKeyHash: endorsementKeyHash(ek),
  expiresAt: "2026-06-01T13:00:00.000Z",
};
const token = (key = challengeKey, se = Math.floor(now.getTime() / 1000) + 600) =>
  createSasToken(key, encodeURIComponent("0ne00000A0A/registrations/tpm-dev"), se, "registration");
const input = (over: Partial<TpmInput>): TpmInput => ({
  idScope: "0ne00000A0A",
  registrationId: "tpm-dev",
  token: undefined,
  enrollment,
  presented: { endorsementKey: ek, storageRootKey: srk },
  challenge: undefined,
  now,
  ...over,
});
const reason = (v: ReturnType<typeof attestTpm>) => (v.kind === "refused" ? v.reason : v.kind);

test("no token: the enrolled EK is challenged; another EK or no keys are refused without one", () => {
  assert.equal(attestTpm(input({})).kind, "issueChallenge");
  const other = testEndorsementKey().tpm2b;
  assert.match(
    reason(attestTpm(input({ presented: { endorsementKey: other, storageRootKey: srk } }))),
    /not the one enrolled/,
  );
  assert.match(reason(attestTpm(input({ presented: undefined }))), /sends 'tpm'/);
});

test("a token signed with the pending challenge's key admits the device, with new hub keys each time", () => {
  const first = attestTpm(input({ token: token(), challenge }));
  const second = attestTpm(input({ token: token(), challenge, presented: undefined }));
  assert.equal(first.kind, "attested");
  assert.equal(second.kind, "attested", "a poll carries no keys and is still admitted");
  if (first.kind !== "attested" || second.kind !== "attested") return;
  assert.equal(first.credential.kind, "keys");
  assert.notDeepEqual(first.credential, second.credential, "the hub key rolls");
});

test("a token is refused without a pending challenge, after it expired, for a changed EK, or signed otherwise", () => {
  assert.match(reason(attestTpm(input({ token: token() }))), /no TPM challenge is pending/);
  const expired = { ...challenge, expiresAt: "2026-06-01T11:59:59.000Z" };
  assert.match(reason(attestTpm(input({ token: token(), challenge: expired }))), /no TPM challenge is pending/);
  const changed = { ...challenge, endorsementKeyHash: "00".repeat(32) };
  assert.match(reason(attestTpm(input({ token: token(), challenge: changed }))), /no TPM challenge is pending/);
  const forged = token(Buffer.alloc(32, 9).toString("base64"));
  assert.match(
    reason(attestTpm(input({ token: forged, challenge }))),
    /does not verify with the key of the device's TPM challenge/,
  );
  assert.match(reason(attestTpm(input({ token: token(challengeKey, 1), challenge }))), /expired/);
});

test("a disabled enrollment is disabled, challenge or not", () => {
  const disabled = { ...enrollment, provisioningStatus: "disabled" } as TpmInput["enrollment"];
  assert.equal(attestTpm(input({ enrollment: disabled })).kind, "disabled");
});
