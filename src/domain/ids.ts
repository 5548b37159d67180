// Identifier rules, behaviors.md §1.
import { fail } from "./errors.js";

/** A registration id as the device or operator spelled it. Compare with `idKey`. */
export type RegistrationId = string & { readonly __brand: "RegistrationId" };
export type EnrollmentGroupId = string & { readonly __brand: "EnrollmentGroupId" };
/** `0ne` + 8 upper-case hex digits (behaviors.md §1.4). Case-sensitive. */
export type IdScope = string & { readonly __brand: "IdScope" };

// Charset A-Z a-z 0-9 - . _ : ; last character alphanumeric or '-' (behaviors.md §1.1, docs rule).
const ID_PATTERN = /^[A-Za-z0-9\-._:]{0,127}[A-Za-z0-9-]$/;

export const isValidRegistrationId = (id: string): boolean => ID_PATTERN.test(id);

export function registrationId(value: unknown): RegistrationId {
  if (typeof value !== "string" || !ID_PATTERN.test(value)) {
    fail("invalidRegistrationId", { id: String(value ?? "") });
  }
  return value as RegistrationId;
}

export function enrollmentGroupId(value: unknown): EnrollmentGroupId {
  if (typeof value !== "string" || !ID_PATTERN.test(value)) {
    fail("invalidEnrollmentGroupId", { id: String(value ?? "") });
  }
  return value as EnrollmentGroupId;
}

/** Storage and lookup key: ids are case-insensitive (behaviors.md §1.1). */
export const idKey = (id: string): string => id.toLowerCase();

// IoT Hub device id rule (behaviors.md §1.3).
const DEVICE_ID_PATTERN = /^[A-Za-z0-9\-.%_*?!(),:=@$']{1,128}$/;
export const isValidDeviceId = (id: string): boolean => DEVICE_ID_PATTERN.test(id);

const ID_SCOPE_PATTERN = /^0ne[0-9A-F]{8}$/;
export const isIdScope = (value: string): value is IdScope => ID_SCOPE_PATTERN.test(value);

/** A fresh scope from 4 random bytes: `0ne` + 8 upper hex. */
export const idScopeFromBytes = (bytes: Uint8Array): IdScope =>
  `0ne${Buffer.from(bytes.subarray(0, 4)).toString("hex").toUpperCase()}` as IdScope;

// Instance names, management.md §1.2.
const INSTANCE_NAME_PATTERN = /^(?![0-9]+$)(?!-)[a-zA-Z0-9-]{2,49}[a-zA-Z0-9]$/;
export const isValidInstanceName = (name: string): boolean => INSTANCE_NAME_PATTERN.test(name);
