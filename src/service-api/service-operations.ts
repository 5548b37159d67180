// How a service API request is named in DPS's ServiceOperations log lines (behaviors.md §11):
// the operation (Get, Upsert, Delete, Query, Bulk) and what it is about. Pure.
import type { RequestPath } from "../http/request-path.js";

const TYPES: Record<string, string> = {
  enrollments: "IndividualEnrollment",
  enrollmentgroups: "EnrollmentGroup",
  registrations: "Registration",
};

export function serviceOperation(method: string, path: RequestPath): { operation: string; id: string; type: string } {
  const type = TYPES[path.lower[0] ?? ""] ?? "Unknown";
  const last = path.lower[path.lower.length - 1];
  const id = path.lower.length >= 2 && last !== "query" ? (path.segments[1] ?? "") : "";
  const operation =
    method === "GET"
      ? "Get"
      : method === "PUT"
        ? "Upsert"
        : method === "DELETE"
          ? "Delete"
          : method === "POST" && last === "query"
            ? "Query"
            : method === "POST" && path.lower.length === 1
              ? "Bulk"
              : method;
  return { operation, id, type };
}
