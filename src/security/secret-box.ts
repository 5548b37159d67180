// Secrets at rest: AES-256-GCM under the master key. Layout of a sealed value (base64):
// version byte 1 | 12-byte IV | 16-byte tag | ciphertext.
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;

export class SecretBox {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== 32) throw new Error("The master key must be 32 bytes (AES-256).");
    this.#key = key;
  }

  seal(plaintext: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", this.#key, iv);
    const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    return Buffer.concat([Buffer.of(VERSION), iv, cipher.getAuthTag(), body]).toString("base64");
  }

  open(sealed: string): string {
    const raw = Buffer.from(sealed, "base64");
    if (raw[0] !== VERSION || raw.length < 1 + IV_BYTES + TAG_BYTES) {
      throw new Error("A stored secret is not in a format this version can read.");
    }
    const iv = raw.subarray(1, 1 + IV_BYTES);
    const tag = raw.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES);
    const decipher = createDecipheriv("aes-256-gcm", this.#key, iv);
    decipher.setAuthTag(tag);
    try {
      return Buffer.concat([decipher.update(raw.subarray(1 + IV_BYTES + TAG_BYTES)), decipher.final()]).toString(
        "utf8",
      );
    } catch {
      throw new Error("A stored secret does not decrypt with this master key (PROVISIO_MASTER_KEY or master.key).");
    }
  }
}

/** Decode a master key given as 64 hex digits or base64 of 32 bytes. */
export function parseMasterKey(text: string): Buffer {
  const t = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, "hex") : Buffer.from(t, "base64");
  if (key.length !== 32) throw new Error("The master key must be 32 bytes, as 64 hex digits or base64.");
  return key;
}

/**
 * The master key: the one configured (PROVISIO_MASTER_KEY, server/config.ts) if any, else
 * `DIR/master.key` (created 0600 on first start with 32 random bytes).
 */
export function loadMasterKey(dataDir: string, configured?: string): Buffer {
  if (configured) return parseMasterKey(configured);
  const file = join(dataDir, "master.key");
  if (!existsSync(file)) {
    writeFileSync(file, `${randomBytes(32).toString("base64")}\n`, { mode: 0o600, flag: "wx" });
  }
  chmodSync(file, 0o600);
  return parseMasterKey(readFileSync(file, "utf8"));
}
