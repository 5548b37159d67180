// TPM challenges on SQLite, sharing the database with SqliteStore: one pending a device, its key
// sealed like every other secret at rest.
import type Database from "better-sqlite3";
import { type IdScope, idKey } from "../../domain/ids.js";
import type { TpmChallenge } from "../../domain/tpm-challenge.js";
import type { SecretBox } from "../../security/secret-box.js";

interface ChallengeRow {
  sealed: string;
  ek_hash: string;
  expires: string;
}

export class SqliteTpmChallenges {
  readonly #get: Database.Statement<[string, string], ChallengeRow>;
  readonly #put: Database.Statement<[string, string, string, string, string]>;

  constructor(
    db: Database.Database,
    private readonly secrets: SecretBox,
  ) {
    this.#get = db.prepare(
      "SELECT sealed, ek_hash, expires FROM tpm_challenges WHERE id_scope = ? AND registration_key = ?",
    );
    this.#put = db.prepare(
      `INSERT INTO tpm_challenges (id_scope, registration_key, sealed, ek_hash, expires) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (id_scope, registration_key) DO UPDATE SET sealed = excluded.sealed, ek_hash = excluded.ek_hash, expires = excluded.expires`,
    );
  }

  get(idScope: IdScope, registrationId: string): TpmChallenge | undefined {
    const row = this.#get.get(idScope, idKey(registrationId));
    return row && { key: this.secrets.open(row.sealed), endorsementKeyHash: row.ek_hash, expiresAt: row.expires };
  }

  put(idScope: IdScope, registrationId: string, c: TpmChallenge): void {
    this.#put.run(idScope, idKey(registrationId), this.secrets.seal(c.key), c.endorsementKeyHash, c.expiresAt);
  }
}
