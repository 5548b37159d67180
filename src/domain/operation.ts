// A registration operation: what a device polls after register (device-api.md §3.2).
import type { RegistrationStatus } from "./registration-state.js";

/** The device-facing registrationState (device-api.md §3.3). */
export interface DeviceRegistrationResult {
  registrationId: string;
  createdDateTimeUtc?: string;
  assignedHub?: string;
  deviceId?: string;
  status: RegistrationStatus;
  substatus?: string;
  errorCode?: number;
  errorMessage?: string;
  lastUpdatedDateTimeUtc?: string;
  etag?: string;
  payload?: unknown;
  symmetricKey?: { enrollmentGroupId?: string };
  x509?: { enrollmentGroupId?: string };
  tpm?: { authenticationKey: string };
}

export interface RegistrationOperation {
  operationId: string;
  registrationId: string;
  status: RegistrationStatus;
  registrationState?: DeviceRegistrationResult;
  createdDateTimeUtc: string;
  /**
   * While the work goes on: the node carrying it, which renews `until` (ISO-8601) as long as it
   * lives. Past `until` the carrier is gone (crashed, killed) and the operation is failed by
   * whoever reads it, so no device polls `assigning` forever. Never sent to devices.
   */
  carrier?: OperationCarrier;
}

export interface OperationCarrier {
  node: string;
  until: string;
}
