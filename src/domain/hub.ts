// The built-in IoT hub's records (iothub-api.md §4): hubs with their policies, device identities.
import type { TwinState } from "./twin-state.js";

export const HUB_RIGHTS = ["RegistryRead", "RegistryWrite", "ServiceConnect", "DeviceConnect"] as const;
export type HubRight = (typeof HUB_RIGHTS)[number];

export interface HubPolicy {
  keyName: string;
  primaryKey: string;
  secondaryKey: string;
  rights: HubRight[];
}

export interface BuiltinHub {
  /** Short name, e.g. `hub-1`. */
  name: string;
  /** The host name devices and service clients use; listeners route on it. */
  hostName: string;
  policies: HubPolicy[];
}

export type AuthenticationType = "sas" | "selfSigned" | "certificateAuthority" | "none";

export interface DeviceIdentity {
  deviceId: string;
  generationId: string;
  etag: string;
  status: "enabled" | "disabled";
  statusReason: string | null;
  statusUpdatedTime: string;
  connectionState: "Disconnected" | "Connected";
  connectionStateUpdatedTime: string;
  lastActivityTime: string;
  cloudToDeviceMessageCount: number;
  authentication: {
    type: AuthenticationType;
    symmetricKey: { primaryKey: string | null; secondaryKey: string | null };
    x509Thumbprint: { primaryThumbprint: string | null; secondaryThumbprint: string | null };
  };
  capabilities: { iotEdge: boolean };
  /**
   * IoT Edge parent/child relations (iothub-api.md §4.1): an edge device's own scope
   * (`ms-azure-iot-edge://{deviceId}-{generationId}`), or a leaf device's parent's scope, or null.
   * Absent on records stored before relations existed (builtin-hub/device-scopes.ts fills it in).
   */
  deviceScope?: string | null;
  /** The parent's scope, at most one: set by clients for edge devices, mirrors `deviceScope` for leaves. */
  parentScopes?: string[];
  /** Modules only: who manages the module (`iotEdge` for an edge deployment's), or null. */
  managedBy?: string | null;
}

/** One device of a hub: its identity and twin. `rowVersion` guards read-modify-write. */
export interface HubDeviceRecord {
  identity: DeviceIdentity;
  twin: TwinState;
  rowVersion: number;
}

/** "Never", as IoT Hub writes it (iothub-api.md §4.1). */
export const NEVER = "0001-01-01T00:00:00Z";
