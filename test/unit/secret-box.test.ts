// Secrets at rest: AES-256-GCM under the master key, and where the master key comes from.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { loadMasterKey, parseMasterKey, SecretBox } from "../../src/security/secret-box.js";

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "provisio-secret-box-"));
  dirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const KEY = Buffer.alloc(32, 0x11);
const OTHER_KEY = Buffer.alloc(32, 0x22);
const FORMAT_ERROR = /not in a format this version can read/;
const DECRYPT_ERROR = /does not decrypt with this master key \(PROVISIO_MASTER_KEY or master\.key\)/;

test("a sealed secret opens to the same text", () => {
  const box = new SecretBox(KEY);
  for (const text of [
    "",
    "a",
    "HostName=hub.azure-devices.net;SharedAccessKey=abc==",
    "ünïcødé ✓ 🔑",
    "x".repeat(10_000),
  ]) {
    assert.equal(box.open(box.seal(text)), text);
  }
});

test("a sealed secret is base64 of version 1, a 12-byte IV, a 16-byte tag and the ciphertext", () => {
  const raw = Buffer.from(new SecretBox(KEY).seal("hello"), "base64");
  assert.equal(raw[0], 1);
  assert.equal(raw.length, 1 + 12 + 16 + Buffer.byteLength("hello"));
});

test("a sealed secret does not contain the plaintext", () => {
  const secret = "very-secret-key-material";
  const sealed = new SecretBox(KEY).seal(secret);
  assert.equal(sealed.includes(secret), false);
  assert.equal(Buffer.from(sealed, "base64").includes(Buffer.from(secret)), false);
});

test("two seals of the same text differ (random IV)", () => {
  const box = new SecretBox(KEY);
  const a = box.seal("same text");
  const b = box.seal("same text");
  assert.notEqual(a, b);
  assert.notDeepEqual(Buffer.from(a, "base64").subarray(1, 13), Buffer.from(b, "base64").subarray(1, 13));
  assert.equal(box.open(a), box.open(b));
});

test("tampering with any byte of a sealed secret fails with a clear message", () => {
  const box = new SecretBox(KEY);
  const raw = Buffer.from(box.seal("tamper-evident"), "base64");
  for (let i = 0; i < raw.length; i++) {
    const tampered = Buffer.from(raw);
    tampered[i] = (tampered[i] ?? 0) ^ 0x01;
    assert.throws(
      () => box.open(tampered.toString("base64")),
      i === 0 ? FORMAT_ERROR : DECRYPT_ERROR,
      `byte ${i} flipped`,
    );
  }
});

test("a truncated or empty sealed secret fails with the format message", () => {
  const box = new SecretBox(KEY);
  const raw = Buffer.from(box.seal("x"), "base64");
  assert.throws(() => box.open(raw.subarray(0, 28).toString("base64")), FORMAT_ERROR);
  assert.throws(() => box.open(""), FORMAT_ERROR);
  assert.throws(() => box.open("not base64 at all!"), FORMAT_ERROR);
});

test("a sealed secret with its ciphertext cut short fails to decrypt", () => {
  const box = new SecretBox(KEY);
  const raw = Buffer.from(box.seal("some longer text"), "base64");
  assert.throws(() => box.open(raw.subarray(0, raw.length - 1).toString("base64")), DECRYPT_ERROR);
});

test("a secret sealed under one key does not open under another", () => {
  const sealed = new SecretBox(KEY).seal("secret");
  assert.throws(() => new SecretBox(OTHER_KEY).open(sealed), DECRYPT_ERROR);
});

test("a SecretBox needs a 32-byte key", () => {
  for (const length of [0, 16, 31, 33, 64]) {
    assert.throws(() => new SecretBox(Buffer.alloc(length)), /32 bytes/, String(length));
  }
});

test("parseMasterKey accepts 64 hex digits", () => {
  const key = randomBytes(32);
  assert.deepEqual(parseMasterKey(key.toString("hex")), key);
  assert.deepEqual(parseMasterKey(key.toString("hex").toUpperCase()), key);
  assert.deepEqual(parseMasterKey(`  ${key.toString("hex")}\n`), key);
});

test("parseMasterKey accepts base64 of 32 bytes", () => {
  const key = randomBytes(32);
  assert.deepEqual(parseMasterKey(key.toString("base64")), key);
  assert.deepEqual(parseMasterKey(`${key.toString("base64")}\n`), key);
});

test("parseMasterKey rejects keys of other lengths", () => {
  const bad = [
    "",
    "00".repeat(31), // 62 hex digits
    "00".repeat(33), // 66 hex digits
    randomBytes(16).toString("base64"),
    randomBytes(31).toString("base64"),
    randomBytes(33).toString("base64"),
    randomBytes(64).toString("base64"),
  ];
  for (const text of bad) {
    assert.throws(() => parseMasterKey(text), /32 bytes, as 64 hex digits or base64/, text);
  }
});

test("loadMasterKey takes the configured key (PROVISIO_MASTER_KEY) and writes no file", () => {
  const dir = tempDir();
  const key = randomBytes(32);
  assert.deepEqual(loadMasterKey(dir, key.toString("hex")), key);
  assert.deepEqual(loadMasterKey(dir, key.toString("base64")), key);
  assert.equal(existsSync(join(dir, "master.key")), false);
});

test("loadMasterKey rejects a malformed PROVISIO_MASTER_KEY", () => {
  assert.throws(() => loadMasterKey(tempDir(), "too-short"), /32 bytes/);
});

test("loadMasterKey creates master.key with mode 0600 and reuses it on the next call", () => {
  const dir = tempDir();
  const file = join(dir, "master.key");
  const first = loadMasterKey(dir);
  assert.equal(first.length, 32);
  assert.ok(existsSync(file));
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.deepEqual(parseMasterKey(readFileSync(file, "utf8")), first);

  const second = loadMasterKey(dir);
  assert.deepEqual(second, first);
  const sealed = new SecretBox(first).seal("survives a restart");
  assert.equal(new SecretBox(second).open(sealed), "survives a restart");
});

test("loadMasterKey treats an empty PROVISIO_MASTER_KEY as unset", () => {
  const dir = tempDir();
  const key = loadMasterKey(dir, "");
  assert.equal(key.length, 32);
  assert.ok(existsSync(join(dir, "master.key")));
});

test("loadMasterKey tightens an existing master.key to mode 0600 and reads it", () => {
  const dir = tempDir();
  const file = join(dir, "master.key");
  const key = randomBytes(32);
  writeFileSync(file, `${key.toString("hex")}\n`);
  chmodSync(file, 0o644);
  assert.deepEqual(loadMasterKey(dir), key);
  assert.equal(statSync(file).mode & 0o777, 0o600);
});

test("two data directories get different master keys", () => {
  assert.notDeepEqual(loadMasterKey(tempDir()), loadMasterKey(tempDir()));
});
