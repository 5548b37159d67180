// Storage of the built-in hubs: their configuration and their devices (identity + twin).
// Device ids are case-sensitive (IoT Hub rule), unlike DPS registration ids.
import type { BuiltinHub, HubDeviceRecord } from "../domain/hub.js";
import type { JsonObject } from "../domain/json.js";
import type { Page, PageRequest, WriteResult } from "./records.js";

export interface HubStore {
  listBuiltinHubs(): Promise<BuiltinHub[]>;
  /** Creates or replaces a hub's configuration. */
  putBuiltinHub(hub: BuiltinHub): Promise<void>;

  getHubDevice(hub: string, deviceId: string): Promise<HubDeviceRecord | undefined>;
  /**
   * Writes a device if the stored row version is `expected` ("absent": no row), compared in the
   * write itself. The stored record gets `rowVersion` = expected + 1 (1 for a new row); refusals:
   * exists / etagMismatch / missing.
   */
  putHubDevice(hub: string, record: HubDeviceRecord, expected: number | "absent"): Promise<WriteResult>;
  deleteHubDevice(hub: string, deviceId: string): Promise<boolean>;
  listHubDevices(hub: string, page: PageRequest): Promise<Page<HubDeviceRecord>>;
}

/** What a hub's live device sessions must hear of, wherever the write was made. */
export type HubDeviceEvent = { hub: string; deviceId: string } & (
  | { kind: "desired"; notification: JsonObject; version: number }
  | { kind: "revoked" }
);

/**
 * Carries hub device events to the other nodes sharing the database (a device may be connected
 * to any node). Events of this node never come back to it.
 */
export interface HubEventRelay {
  publish(event: HubDeviceEvent): Promise<void>;
  subscribe(listener: (event: HubDeviceEvent) => void): void;
}
