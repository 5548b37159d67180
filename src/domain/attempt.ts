// Every registration explained (issue 22): what each register call did, step by step, in plain
// words, kept with the registration record (attested devices) or on their own (refused ones, so
// "why was my device refused" has an answer without the server's logs). Pure.

export interface AttemptStep {
  /** The registration step (provisioning/registration-steps.ts): checkRequest, attestDevice, … */
  step: string;
  outcome: "passed" | "failed";
  durationMs: number;
  /** What the step found or decided. */
  detail?: string;
}

export interface RegistrationAttempt {
  /** When the register call arrived (ISO 8601). */
  at: string;
  /** How it ended: the registration's status, or `refused` before any work. */
  outcome: "assigned" | "disabled" | "failed" | "refused";
  /** The DPS error of a refusal or failure. */
  errorCode?: number;
  message?: string;
  durationMs: number;
  protocol?: string;
  /** The device's address as the listener saw it. */
  sourceAddress: string;
  operationId?: string;
  steps: AttemptStep[];
}

/** Attempts kept with a registration record. */
export const ATTEMPTS_KEPT = 5;

/** The newest attempts first, at most ATTEMPTS_KEPT. */
export const withAttempt = (
  earlier: readonly RegistrationAttempt[] | undefined,
  attempt: RegistrationAttempt,
): RegistrationAttempt[] => [attempt, ...(earlier ?? [])].slice(0, ATTEMPTS_KEPT);

/** Milliseconds with a tenth of precision: enough to read, short to store. */
export const roundMs = (ms: number): number => Math.round(ms * 10) / 10;
