// The provisioning service resource as the management API serves it (management.md §1), and
// the read-modify-write the CLI does on it: az's pattern of GET (+ listkeys), change, PUT.
import type { DpsSession } from "./server-options.js";

const API = "api-version=2022-02-05";

export interface LinkedHubWire {
  name: string;
  connectionString: string;
  location: string;
  allocationWeight?: number | null;
  applyAllocationPolicy?: boolean | null;
}

export interface PolicyWire {
  keyName: string;
  primaryKey: string;
  secondaryKey: string;
  rights: string;
}

export interface InstanceResource {
  name: string;
  etag: string;
  location: string;
  sku: { name: string; tier: string; capacity: number };
  properties: Record<string, unknown> & {
    idScope: string;
    serviceOperationsHostName: string;
    deviceProvisioningHostName: string;
    allocationPolicy: string;
    iotHubs: LinkedHubWire[];
  };
}

export async function readInstance(session: DpsSession): Promise<{ path: string; resource: InstanceResource }> {
  const path = await session.instancePath();
  const resource = (await session.client.call("GET", `${path}?${API}`)) as InstanceResource;
  return { path, resource };
}

/** PUT a change of some properties; the etag read guards against a concurrent writer (412). */
export async function putProperties(
  session: DpsSession,
  path: string,
  etag: string,
  properties: Record<string, unknown>,
): Promise<InstanceResource> {
  return (await session.client.call("PUT", `${path}?${API}`, {
    body: { properties },
    headers: { "if-match": etag },
  })) as InstanceResource;
}

export async function listKeys(session: DpsSession, path: string): Promise<PolicyWire[]> {
  const reply = (await session.client.call("POST", `${path}/listkeys?${API}`)) as { value: PolicyWire[] };
  return reply.value;
}

/** Linked hubs with their real connection strings (Provisio's listLinkedHubKeys). */
export async function listLinkedHubKeys(session: DpsSession, path: string): Promise<LinkedHubWire[]> {
  const reply = (await session.client.call("POST", `${path}/listLinkedHubKeys?${API}`)) as { value: LinkedHubWire[] };
  return reply.value;
}

export const INSTANCE_API = API;
