// HubStore on SQLite: shares the database (and its migrations) with the SqliteStore.
// Secrets (policy keys, device symmetric keys) are sealed; the twin and the rest are the doc.
import type Database from "better-sqlite3";
import type { BuiltinHub, HubDeviceRecord, HubPolicy } from "../../domain/hub.js";
import type { SecretBox } from "../../security/secret-box.js";
import type { HubStore } from "../hub-store.js";
import type { Page, PageRequest, WriteResult } from "../records.js";

interface DeviceRow {
  device_id: string;
  row_version: number;
  doc: string;
  sealed: string | null;
}

type DeviceKeys = { primaryKey: string | null; secondaryKey: string | null };

const OK: WriteResult = Object.freeze({ ok: true });

export class SqliteHubStore implements HubStore {
  readonly #secrets: SecretBox;
  readonly #listHubs: Database.Statement<[], { doc: string; sealed: string }>;
  readonly #putHub: Database.Statement<[string, string, string]>;
  readonly #get: Database.Statement<[string, string], DeviceRow>;
  readonly #page: Database.Statement<[string, string, number], DeviceRow>;
  readonly #insert: Database.Statement<[string, string, string, string | null]>;
  readonly #update: Database.Statement<[number, string, string | null, string, string, number]>;
  readonly #delete: Database.Statement<[string, string]>;
  readonly #exists: Database.Statement<[string, string], { row_version: number }>;

  constructor(db: Database.Database, secrets: SecretBox) {
    this.#secrets = secrets;
    this.#listHubs = db.prepare("SELECT doc, sealed FROM builtin_hubs ORDER BY name_key");
    this.#putHub = db.prepare(
      "INSERT INTO builtin_hubs (name_key, doc, sealed) VALUES (?, ?, ?) ON CONFLICT (name_key) DO UPDATE SET doc = excluded.doc, sealed = excluded.sealed",
    );
    const cols = "device_id, row_version, doc, sealed";
    this.#get = db.prepare(`SELECT ${cols} FROM hub_devices WHERE hub_key = ? AND device_id = ?`);
    this.#page = db.prepare(
      `SELECT ${cols} FROM hub_devices WHERE hub_key = ? AND device_id > ? ORDER BY device_id LIMIT ?`,
    );
    this.#insert = db.prepare(
      "INSERT INTO hub_devices (hub_key, device_id, row_version, doc, sealed) VALUES (?, ?, 1, ?, ?) ON CONFLICT DO NOTHING",
    );
    // The row-version check and the write are one statement: atomic without a transaction.
    this.#update = db.prepare(
      "UPDATE hub_devices SET row_version = ?, doc = ?, sealed = ? WHERE hub_key = ? AND device_id = ? AND row_version = ?",
    );
    this.#delete = db.prepare("DELETE FROM hub_devices WHERE hub_key = ? AND device_id = ?");
    this.#exists = db.prepare("SELECT row_version FROM hub_devices WHERE hub_key = ? AND device_id = ?");
  }

  async listBuiltinHubs(): Promise<BuiltinHub[]> {
    return this.#listHubs.all().map((row) => {
      const hub = JSON.parse(row.doc) as Omit<BuiltinHub, "policies"> & {
        policies: Omit<HubPolicy, "primaryKey" | "secondaryKey">[];
      };
      const keys = JSON.parse(this.#secrets.open(row.sealed)) as { primaryKey: string; secondaryKey: string }[];
      return {
        ...hub,
        policies: hub.policies.map((p, i) => ({ ...p, ...(keys[i] as { primaryKey: string; secondaryKey: string }) })),
      };
    });
  }

  async putBuiltinHub(hub: BuiltinHub): Promise<void> {
    const doc = { ...hub, policies: hub.policies.map(({ primaryKey: _p, secondaryKey: _s, ...rest }) => rest) };
    const keys = hub.policies.map((p) => ({ primaryKey: p.primaryKey, secondaryKey: p.secondaryKey }));
    this.#putHub.run(hub.name.toLowerCase(), JSON.stringify(doc), this.#secrets.seal(JSON.stringify(keys)));
  }

  async getHubDevice(hub: string, deviceId: string): Promise<HubDeviceRecord | undefined> {
    const row = this.#get.get(hub.toLowerCase(), deviceId);
    return row && this.#decode(row);
  }

  async putHubDevice(hub: string, record: HubDeviceRecord, expected: number | "absent"): Promise<WriteResult> {
    const { doc, sealed } = this.#encode(record);
    const hubKey = hub.toLowerCase();
    const id = record.identity.deviceId;
    if (expected === "absent") {
      const r = this.#insert.run(hubKey, id, doc, sealed);
      return r.changes === 1 ? OK : { ok: false, reason: "exists" };
    }
    const r = this.#update.run(expected + 1, doc, sealed, hubKey, id, expected);
    if (r.changes === 1) return OK;
    return { ok: false, reason: this.#exists.get(hubKey, id) ? "etagMismatch" : "missing" };
  }

  async deleteHubDevice(hub: string, deviceId: string): Promise<boolean> {
    return this.#delete.run(hub.toLowerCase(), deviceId).changes === 1;
  }

  async listHubDevices(hub: string, page: PageRequest): Promise<Page<HubDeviceRecord>> {
    const rows = this.#page.all(hub.toLowerCase(), page.after ?? "", page.limit + 1);
    const more = rows.length > page.limit;
    const shown = more ? rows.slice(0, page.limit) : rows;
    const items = shown.map((r) => this.#decode(r));
    const last = shown[shown.length - 1];
    return more && last ? { items, next: last.device_id } : { items };
  }

  #encode(record: HubDeviceRecord): { doc: string; sealed: string | null } {
    const { symmetricKey, ...auth } = record.identity.authentication;
    const hasKeys = symmetricKey.primaryKey !== null || symmetricKey.secondaryKey !== null;
    const doc = { identity: { ...record.identity, authentication: auth }, twin: record.twin };
    return { doc: JSON.stringify(doc), sealed: hasKeys ? this.#secrets.seal(JSON.stringify(symmetricKey)) : null };
  }

  #decode(row: DeviceRow): HubDeviceRecord {
    const doc = JSON.parse(row.doc) as {
      identity: Omit<HubDeviceRecord["identity"], "authentication"> & {
        authentication: Omit<HubDeviceRecord["identity"]["authentication"], "symmetricKey">;
      };
      twin: HubDeviceRecord["twin"];
    };
    const symmetricKey: DeviceKeys = row.sealed
      ? (JSON.parse(this.#secrets.open(row.sealed)) as DeviceKeys)
      : { primaryKey: null, secondaryKey: null };
    return {
      identity: { ...doc.identity, authentication: { ...doc.identity.authentication, symmetricKey } },
      twin: doc.twin,
      rowVersion: row.row_version,
    };
  }
}
