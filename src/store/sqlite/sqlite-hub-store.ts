// HubStore on SQLite: shares the database (and its migrations) with the SqliteStore.
// Secrets (policy keys, device symmetric keys) are sealed; the twin and the rest are the doc.
import type Database from "better-sqlite3";
import type { BuiltinHub, HubDeviceRecord } from "../../domain/hub.js";
import type { SecretBox } from "../../security/secret-box.js";
import type { HubStore } from "../hub-store.js";
import {
  decodeBuiltinHub,
  decodeHubDevice,
  encodeBuiltinHub,
  encodeHubDevice,
  OK,
  pageOf,
} from "../record-mappings.js";
import type { Page, PageRequest, WriteResult } from "../records.js";

interface DeviceRow {
  device_id: string;
  row_version: number;
  doc: string;
  sealed: string | null;
}

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
    return this.#listHubs.all().map((row) => decodeBuiltinHub(this.#secrets, row.doc, row.sealed));
  }

  async putBuiltinHub(hub: BuiltinHub): Promise<void> {
    const { doc, sealed } = encodeBuiltinHub(this.#secrets, hub);
    this.#putHub.run(hub.name.toLowerCase(), doc, sealed);
  }

  async getHubDevice(hub: string, deviceId: string): Promise<HubDeviceRecord | undefined> {
    const row = this.#get.get(hub.toLowerCase(), deviceId);
    return row && decodeHubDevice(this.#secrets, row.doc, row.sealed, row.row_version);
  }

  async putHubDevice(hub: string, record: HubDeviceRecord, expected: number | "absent"): Promise<WriteResult> {
    const { doc, sealed } = encodeHubDevice(this.#secrets, record);
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
    return pageOf(
      rows,
      page.limit,
      (r) => r.device_id,
      (r) => decodeHubDevice(this.#secrets, r.doc, r.sealed, r.row_version),
    );
  }
}
