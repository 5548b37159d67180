// The provisioning service resource (management.md §1) and its read-modify-write: GET, change
// some properties, PUT them back guarded by the etag read (a concurrent change is a 412).
import type { Api } from "./api.js";

export interface LinkedHub {
  name: string;
  /** Masked by GET (`SharedAccessKey=****`); sent back masked, the stored key is kept. */
  connectionString: string;
  location: string;
  allocationWeight?: number | null;
  applyAllocationPolicy?: boolean | null;
}

export interface IpFilterRule {
  filterName: string;
  action: "Accept" | "Reject";
  ipMask: string;
  target?: "all" | "serviceApi" | "deviceApi";
}

export interface ServiceResource {
  name: string;
  etag: string;
  location: string;
  properties: {
    idScope: string;
    serviceOperationsHostName: string;
    deviceProvisioningHostName: string;
    allocationPolicy: string;
    iotHubs: LinkedHub[];
    ipFilterRules: IpFilterRule[];
    publicNetworkAccess: "Enabled" | "Disabled";
  };
}

export interface PolicyWithKeys {
  keyName: string;
  primaryKey: string;
  secondaryKey: string;
  rights: string;
}

export const readService = (api: Api, path: string): Promise<ServiceResource> => api.get<ServiceResource>(path);

export async function putServiceProperties(
  api: Api,
  path: string,
  etag: string,
  properties: Partial<ServiceResource["properties"]> & { authorizationPolicies?: PolicyWithKeys[] },
): Promise<ServiceResource> {
  return (await api.call<ServiceResource>("PUT", path, { body: { properties }, headers: { "If-Match": etag } })).body;
}

export const listKeys = async (api: Api, path: string): Promise<PolicyWithKeys[]> =>
  (await api.call<{ value: PolicyWithKeys[] }>("POST", `${path}/listkeys`)).body.value;
