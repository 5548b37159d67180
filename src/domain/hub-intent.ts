// What a registration is about to do to the hubs, recorded before its first hub write, so a crash
// between the hub writes and the record (issue "Reliability under faults" 2) is finished or undone
// afterwards. Settling is one rule (settleHubIntent): when the registration is over, a hub keeps
// an identity this registration touched only if the registration's record points at it.
import type { OperationCarrier } from "./operation.js";
import type { DeviceRegistrationState } from "./registration-state.js";

export interface HubPlacement {
  hubName: string;
  deviceId: string;
}

export interface HubIntent {
  operationId: string;
  registrationId: string;
  /** Where the identity is created or refreshed. */
  target: HubPlacement;
  /** Where the device was before (a migration deletes it there once the record is committed). */
  previous?: HubPlacement;
  /**
   * The node carrying the registration, renewing `until` while it lives. A released intent (node
   * "") waits until `until` for a hub's late answer, then is settled by any node.
   */
  carrier: OperationCarrier;
}

const samePlacement = (a: HubPlacement, b: HubPlacement): boolean =>
  a.hubName.toLowerCase() === b.hubName.toLowerCase() && a.deviceId === b.deviceId;

/** Where a registration state says the device lives (a failed attempt keeps the last assignment). */
function placementOf(state: Partial<DeviceRegistrationState> | undefined): HubPlacement | undefined {
  return state?.assignedHub && state.deviceId ? { hubName: state.assignedHub, deviceId: state.deviceId } : undefined;
}

/** The identities to delete to settle `intent`, given the registration's record now. */
export function settleHubIntent(
  intent: HubIntent,
  state: Partial<DeviceRegistrationState> | undefined,
): HubPlacement[] {
  const owned = placementOf(state);
  const touched = [intent.target, ...(intent.previous ? [intent.previous] : [])];
  const unique = touched.filter((p, i) => touched.findIndex((q) => samePlacement(p, q)) === i);
  return unique.filter((p) => !owned || !samePlacement(p, owned));
}
