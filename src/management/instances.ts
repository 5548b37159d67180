// Creating provisioning service instances: the first-start default and management API creates
// share this (management.md §1.3, §3).
import { randomBytes } from "node:crypto";
import { newEtag, nowUtc } from "../domain/etag.js";
import { type IdScope, idScopeFromBytes } from "../domain/ids.js";
import { type AccessPolicy, type Instance, type InstanceAllocationPolicy, RIGHTS } from "../domain/instance.js";

export const OWNER_POLICY = "provisioningserviceowner";

/** Policy keys as the portal makes them: 32 random bytes, base64. */
export const newPolicyKey = (): string => randomBytes(32).toString("base64");

export const newIdScope = (): IdScope => idScopeFromBytes(randomBytes(4));

export function ownerPolicy(): AccessPolicy {
  return { keyName: OWNER_POLICY, primaryKey: newPolicyKey(), secondaryKey: newPolicyKey(), rights: [...RIGHTS] };
}

export function newInstance(name: string, hostName: string, allocationPolicy: InstanceAllocationPolicy): Instance {
  return { idScope: newIdScope(), name, hostName, allocationPolicy, createdDateTimeUtc: nowUtc(), etag: newEtag() };
}
