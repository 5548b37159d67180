// loadOperatorTls: what `--tls-cert`/`--tls-key` files are taken, and the message for each that is not.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { loadOperatorTls, uncoveredNames } from "../../src/security/operator-tls.js";
import { type OperatorPki, operatorPki, serverLeaf, writePair } from "../support/server-certs.js";

let dir: string;
let pki: OperatorPki;
let ec: [string, string];
let rsa: [string, string];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "provisio-operator-tls-unit-"));
  pki = await operatorPki();
  ec = writePair(dir, "ec", await serverLeaf(pki, "ec", { dns: ["*.devices.example.net", "dps.example.net"] }));
  rsa = writePair(dir, "rsa", await serverLeaf(pki, "rsa", { dns: ["dps.example.net"] }));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const load = (certFiles: string[], keyFiles: string[], caFile?: string) =>
  loadOperatorTls({ certFiles, keyFiles, caFile });

test("an ECDSA and an RSA pair: ECDSA first, RSA beside it, the chain kept whole", () => {
  const loaded = load([rsa[0], ec[0]], [rsa[1], ec[1]]);
  assert.deepEqual(
    loaded.served.map((s) => s.keyType),
    ["rsa", "ec"],
  );
  assert.match(loaded.material.certPem, /(BEGIN CERTIFICATE[\s\S]*){2}/, "leaf and intermediate");
  assert.ok(loaded.material.rsa);
  assert.equal(loaded.material.caPem, pki.intermediate.certPem, "the top of the first chain without --tls-ca");
  assert.deepEqual(loaded.warnings, []);
});

test("one pair of either type is served alone", () => {
  const loaded = load([rsa[0]], [rsa[1]]);
  assert.equal(loaded.material.rsa, undefined);
  assert.match(loaded.material.keyPem, /PRIVATE KEY/);
});

test("names the certificates miss, wildcards counted", () => {
  const loaded = load([ec[0]], [ec[1]]);
  assert.deepEqual(
    uncoveredNames(loaded.material, {
      dnsNames: ["dps.example.net", "hub-1.devices.example.net", "a.b.devices.example.net", "localhost"],
      ipAddresses: ["127.0.0.1"],
    }),
    ["a.b.devices.example.net", "localhost", "127.0.0.1"],
  );
});

test("every mistake is refused with a message naming the file", async () => {
  assert.throws(() => load([ec[0]], []), /must come in pairs: 1 certificate file\(s\), 0 key file\(s\)/);
  assert.throws(() => load([ec[0]], [rsa[1]]), new RegExp(`'${rsa[1]}' is not the key of the first certificate`));
  assert.throws(() => load([ec[0], ec[0]], [ec[1], ec[1]]), /two ECDSA certificates given/);
  assert.throws(() => load([join(dir, "absent.pem")], [ec[1]]), /--tls-cert '.*absent.pem' cannot be read/);
  const empty = join(dir, "empty.pem");
  writeFileSync(empty, "not a certificate\n");
  assert.throws(() => load([empty], [ec[1]]), /holds no PEM certificate/);
  assert.throws(() => load([ec[0]], [empty]), /is not a readable unencrypted private key/);

  const expired = await serverLeaf(pki, "ec", undefined, {
    notBefore: new Date(Date.now() - 10 * 86_400_000),
    notAfter: new Date(Date.now() - 86_400_000),
  });
  const old = writePair(dir, "expired", expired);
  assert.throws(() => load([old[0]], [old[1]]), /expired on/);

  // Intermediate before the leaf: clients could not build the path.
  const leaf = await serverLeaf(pki, "ec");
  const [first, ...rest] = leaf.chainPem.split(/(?<=-----END CERTIFICATE-----\n)/);
  const reversed = writePair(dir, "reversed", { chainPem: [...rest, first].join(""), keyPem: leaf.keyPem });
  assert.throws(() => load([reversed[0]], [reversed[1]]), /is not the key of|did not issue certificate/);
  const wrongOrder = writePair(dir, "wrong-order", {
    chainPem: `${leaf.chainPem}${pki.intermediate.certPem}`,
    keyPem: leaf.keyPem,
  });
  assert.throws(() => load([wrongOrder[0]], [wrongOrder[1]]), /certificate 3 did not issue certificate 2/);
});

test("a certificate close to expiry loads with a warning", async () => {
  const soon = writePair(
    dir,
    "soon",
    await serverLeaf(pki, "ec", undefined, { notAfter: new Date(Date.now() + 5 * 86_400_000) }),
  );
  assert.match(load([soon[0]], [soon[1]]).warnings[0] ?? "", /expires on/);
});
