// Hub intents on SQLite, sharing the database with SqliteStore (domain/hub-intent.ts).
import type Database from "better-sqlite3";
import type { HubIntent } from "../../domain/hub-intent.js";
import { type IdScope, idKey } from "../../domain/ids.js";
import { decodeHubIntent } from "../record-mappings.js";
import type { ClaimedHubIntent, IntentSettlement } from "../store.js";

interface IntentRow {
  id_scope: string;
  doc: string;
  carrier: string;
  carried_until: string;
}

export class SqliteHubIntents {
  readonly #put: Database.Statement<[string, string, string, string, string, string]>;
  readonly #delete: Database.Statement<[string, string]>;
  readonly #release: Database.Statement<[string, string, string]>;
  readonly #renew: Database.Statement<[string, string]>;
  readonly #expired: Database.Statement<[{ now: string; limit: number }], IntentRow & { operation_id: string }>;
  readonly #claim: Database.Statement<[string, string, string, string, string]>;
  readonly #claimAll: Database.Transaction<
    (node: string, until: string, now: string, limit: number) => ClaimedHubIntent[]
  >;

  constructor(db: Database.Database) {
    this.#put = db.prepare(
      `INSERT INTO hub_intents (id_scope, operation_id, registration_key, doc, carrier, carried_until) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (id_scope, operation_id) DO UPDATE SET doc = excluded.doc, carrier = excluded.carrier, carried_until = excluded.carried_until`,
    );
    this.#delete = db.prepare("DELETE FROM hub_intents WHERE id_scope = ? AND operation_id = ?");
    this.#release = db.prepare(
      "UPDATE hub_intents SET carrier = '', carried_until = ? WHERE id_scope = ? AND operation_id = ?",
    );
    this.#renew = db.prepare("UPDATE hub_intents SET carried_until = ? WHERE carrier = ?");
    // Not while another registration of the same device is under way: it may be writing the same identity.
    this.#expired = db.prepare(
      `SELECT i.id_scope, i.operation_id, i.doc, i.carrier, i.carried_until FROM hub_intents i
       WHERE i.carried_until < @now AND NOT EXISTS (
         SELECT 1 FROM hub_intents o WHERE o.id_scope = i.id_scope AND o.registration_key = i.registration_key
           AND o.operation_id <> i.operation_id AND o.carried_until >= @now)
       ORDER BY i.carried_until LIMIT @limit`,
    );
    this.#claim = db.prepare(
      "UPDATE hub_intents SET carrier = ?, carried_until = ? WHERE id_scope = ? AND operation_id = ? AND carried_until = ?",
    );
    this.#claimAll = db.transaction((node: string, until: string, now: string, limit: number) => {
      const claimed: ClaimedHubIntent[] = [];
      for (const row of this.#expired.all({ now, limit })) {
        if (this.#claim.run(node, until, row.id_scope, row.operation_id, row.carried_until).changes === 1) {
          claimed.push(decodeHubIntent({ ...row, carrier: node, carried_until: until }));
        }
      }
      return claimed;
    });
  }

  put(idScope: IdScope, intent: HubIntent): void {
    const { carrier, ...doc } = intent;
    this.#put.run(
      idScope,
      intent.operationId,
      idKey(intent.registrationId),
      JSON.stringify(doc),
      carrier.node,
      carrier.until,
    );
  }

  delete(idScope: IdScope, operationId: string): void {
    this.#delete.run(idScope, operationId);
  }

  /** Inside commitRegistration's transaction. */
  settle(idScope: IdScope, operationId: string, settlement: IntentSettlement): void {
    if (settlement === "delete") this.#delete.run(idScope, operationId);
    else if (settlement !== "keep") this.#release.run(settlement.releaseUntil, idScope, operationId);
  }

  renew(node: string, until: string): void {
    this.#renew.run(until, node);
  }

  claim(node: string, until: string, now: string, limit: number): ClaimedHubIntent[] {
    return this.#claimAll.immediate(node, until, now, limit);
  }
}
