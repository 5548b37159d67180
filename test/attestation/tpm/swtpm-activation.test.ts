// The activation blob judged by a real TPM (swtpm) through the real azure-iot-security-tpm client
// (tpm-attestation.md §6): it activates the credential, imports the HMAC key under its SRK, and
// then signs with exactly the key the blob carried.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { after, before, test } from "node:test";
import { activationBlob } from "../../../src/attestation/tpm/activation-blob.js";
import { parseRsaPublic } from "../../../src/attestation/tpm/tpm-public.js";
import { type SoftwareTpm, startSwtpm } from "../../support/swtpm.js";

let swtpm: SoftwareTpm;
before(async () => {
  swtpm = await startSwtpm();
});
after(async () => {
  await swtpm.stop();
});

const call = <T>(f: (cb: (err: Error | null | undefined, value?: T) => void) => void): Promise<T> =>
  new Promise((resolve, reject) => f((err, value) => (err ? reject(err) : resolve(value as T))));

test("swtpm activates our blob, imports the key, and signs with it; a second blob replaces it", async () => {
  const device = swtpm.securityClient("tpm-activation-dev");
  const ek = await call<Buffer>((cb) => device.getEndorsementKey(cb));
  const srk = await call<Buffer>((cb) => device.getStorageRootKey(cb));
  const keys = { ek: parseRsaPublic(ek, "endorsement key"), srk: parseRsaPublic(srk, "storage root key") };
  const data = Buffer.from("0ne00000A0A%2Fregistrations%2Ftpm-activation-dev\n1767225600");
  // The challenge key, then the hub device key, as a registration delivers them (§5).
  for (const key of [Buffer.alloc(32, 0x5a), Buffer.alloc(32, 0xa5)]) {
    await call<void>((cb) => device.activateIdentityKey(activationBlob(keys.ek, keys.srk, key), cb));
    const signature = await call<Buffer>((cb) => device.signWithIdentity(data, cb));
    assert.deepEqual(Buffer.from(signature), createHmac("sha256", key).update(data).digest());
  }
});
