// Device registration state, service-api.md §4.6. Created only by the device API.
import type { RegistrationAttempt } from "./attempt.js";
import type { EnrollmentGroupId, RegistrationId } from "./ids.js";

export type RegistrationStatus = "unassigned" | "assigning" | "assigned" | "failed" | "disabled";
export type RegistrationSubstatus =
  | "initialAssignment"
  | "deviceDataMigrated"
  | "deviceDataReset"
  | "reprovisionedToInitialAssignment";

export interface DeviceRegistrationState {
  registrationId: RegistrationId;
  createdDateTimeUtc: string;
  assignedHub?: string;
  deviceId?: string;
  status: RegistrationStatus;
  substatus?: RegistrationSubstatus;
  errorCode?: number;
  errorMessage?: string;
  lastUpdatedDateTimeUtc: string;
  etag: string;
  payload?: unknown;
}

/** A registration state plus what the service keeps about it but never shows. */
export interface RegistrationRecord {
  state: DeviceRegistrationState;
  /** Set when the device registered through a group: the registration query filters on it. */
  enrollmentGroupId?: EnrollmentGroupId;
  /** The JSON object the device sent with its last registration (behaviors.md §5). */
  devicePayload?: unknown;
  /** The custom allocation webhook calls of the last registration, for debugging (masked URLs). */
  webhookCalls?: unknown[];
  /** The last register calls, newest first, step by step (domain/attempt.ts). */
  attempts?: RegistrationAttempt[];
}

/**
 * Where the device was last placed, whatever became of later attempts: a failed or disabled
 * attempt leaves the identity on its hub, so the record keeps it and reprovisioning starts from it.
 */
export function lastAssignment(
  state: DeviceRegistrationState | undefined,
): { assignedHub: string; deviceId: string } | undefined {
  return state?.assignedHub && state.deviceId
    ? { assignedHub: state.assignedHub, deviceId: state.deviceId }
    : undefined;
}
