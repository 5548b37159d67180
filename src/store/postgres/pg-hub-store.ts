// HubStore on PostgreSQL: the built-in hubs' configuration and devices, in the cluster's database,
// and the relay that carries hub device events (desired-property pushes, revocations) to the
// node a device is connected to.
import type pg from "pg";
import type { BuiltinHub, HubDeviceRecord } from "../../domain/hub.js";
import type { SecretBox } from "../../security/secret-box.js";
import type { HubDeviceEvent, HubEventRelay, HubStore } from "../hub-store.js";
import {
  checkLimit,
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

const COLUMNS = "device_id, row_version, doc, sealed";

export const HUB_EVENTS_CHANNEL = "provisio_hub_events";
// NOTIFY payloads are limited to 8000 bytes; a larger desired patch travels as a revocation.
const MAX_PAYLOAD = 7_900;

export class PgHubStore implements HubStore, HubEventRelay {
  readonly #listeners: ((event: HubDeviceEvent) => void)[] = [];

  constructor(
    private readonly pool: pg.Pool,
    private readonly secrets: SecretBox,
    private readonly node: string,
  ) {}

  async publish(event: HubDeviceEvent): Promise<void> {
    let payload = JSON.stringify({ node: this.node, event });
    if (Buffer.byteLength(payload) > MAX_PAYLOAD) {
      // The session elsewhere is closed instead: the SDKs reconnect and read the whole twin.
      const revoked: HubDeviceEvent = { hub: event.hub, deviceId: event.deviceId, kind: "revoked" };
      payload = JSON.stringify({ node: this.node, event: revoked });
    }
    await this.pool.query("SELECT pg_notify($1, $2)", [HUB_EVENTS_CHANNEL, payload]);
  }

  subscribe(listener: (event: HubDeviceEvent) => void): void {
    this.#listeners.push(listener);
  }

  /** A payload heard on the channel: another node's event, told to this node's sessions. */
  hear(payload: string): void {
    let parsed: { node?: unknown; event?: Partial<HubDeviceEvent> };
    try {
      parsed = JSON.parse(payload) as typeof parsed;
    } catch {
      return;
    }
    const e = parsed.event;
    if (parsed.node === this.node || !e || typeof e.hub !== "string" || typeof e.deviceId !== "string") return;
    if (e.kind !== "desired" && e.kind !== "revoked") return;
    for (const l of this.#listeners) l(e as HubDeviceEvent);
  }

  async listBuiltinHubs(): Promise<BuiltinHub[]> {
    const { rows } = await this.pool.query<{ doc: string; sealed: string }>(
      "SELECT doc, sealed FROM builtin_hubs ORDER BY name_key",
    );
    return rows.map((row) => decodeBuiltinHub(this.secrets, row.doc, row.sealed));
  }

  async putBuiltinHub(hub: BuiltinHub): Promise<void> {
    const { doc, sealed } = encodeBuiltinHub(this.secrets, hub);
    await this.pool.query(
      "INSERT INTO builtin_hubs (name_key, doc, sealed) VALUES ($1, $2, $3) ON CONFLICT (name_key) DO UPDATE SET doc = excluded.doc, sealed = excluded.sealed",
      [hub.name.toLowerCase(), doc, sealed],
    );
  }

  async getHubDevice(hub: string, deviceId: string): Promise<HubDeviceRecord | undefined> {
    const { rows } = await this.pool.query<DeviceRow>({
      name: "provisio_get_hub_device",
      text: `SELECT ${COLUMNS} FROM hub_devices WHERE hub_key = $1 AND device_id = $2`,
      values: [hub.toLowerCase(), deviceId],
    });
    const row = rows[0];
    return row && decodeHubDevice(this.secrets, row.doc, row.sealed, row.row_version);
  }

  async putHubDevice(hub: string, record: HubDeviceRecord, expected: number | "absent"): Promise<WriteResult> {
    const { doc, sealed } = encodeHubDevice(this.secrets, record);
    const hubKey = hub.toLowerCase();
    const id = record.identity.deviceId;
    if (expected === "absent") {
      const { rowCount } = await this.pool.query(
        "INSERT INTO hub_devices (hub_key, device_id, row_version, doc, sealed) VALUES ($1, $2, 1, $3, $4) ON CONFLICT DO NOTHING",
        [hubKey, id, doc, sealed],
      );
      return rowCount === 1 ? OK : { ok: false, reason: "exists" };
    }
    // The row-version check and the write are one statement.
    const { rowCount } = await this.pool.query(
      "UPDATE hub_devices SET row_version = $1, doc = $2, sealed = $3 WHERE hub_key = $4 AND device_id = $5 AND row_version = $6",
      [expected + 1, doc, sealed, hubKey, id, expected],
    );
    if (rowCount === 1) return OK;
    const exists = await this.pool.query("SELECT 1 FROM hub_devices WHERE hub_key = $1 AND device_id = $2", [
      hubKey,
      id,
    ]);
    return { ok: false, reason: exists.rowCount === 1 ? "etagMismatch" : "missing" };
  }

  async deleteHubDevice(hub: string, deviceId: string): Promise<boolean> {
    const { rowCount } = await this.pool.query("DELETE FROM hub_devices WHERE hub_key = $1 AND device_id = $2", [
      hub.toLowerCase(),
      deviceId,
    ]);
    return rowCount === 1;
  }

  async listHubDevices(hub: string, page: PageRequest): Promise<Page<HubDeviceRecord>> {
    checkLimit(page.limit);
    const { rows } = await this.pool.query<DeviceRow>(
      `SELECT ${COLUMNS} FROM hub_devices WHERE hub_key = $1 AND device_id > $2 ORDER BY device_id LIMIT $3`,
      [hub.toLowerCase(), page.after ?? "", page.limit + 1],
    );
    return pageOf(
      rows,
      page.limit,
      (r) => r.device_id,
      (r) => decodeHubDevice(this.secrets, r.doc, r.sealed, r.row_version),
    );
  }
}
