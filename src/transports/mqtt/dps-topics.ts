// The DPS MQTT grammar (device-api.md §6): CONNECT username, request topics, response topics. Pure.

/** `{idScope}/registrations/{registrationId}/api-version=...&ClientVersion=...` */
export function parseDpsUsername(username: string): { idScope: string; registrationId: string } | undefined {
  const m = /^([^/]+)\/registrations\/([^/]+)(?:\/.*)?$/.exec(username);
  if (!m?.[1] || !m[2]) return undefined;
  return { idScope: m[1], registrationId: m[2] };
}

/** Is this CONNECT for DPS (`{idScope}/registrations/…`) rather than for a hub? Decides on the shape alone. */
export const isDpsUsername = (username: string): boolean => {
  const slash = username.indexOf("/");
  return slash > 0 && username.startsWith("registrations/", slash + 1);
};

export type DpsRequest =
  | { kind: "register"; rid: string }
  | { kind: "operationStatus"; rid: string; operationId: string }
  | { kind: "unknown" };

const REGISTER = "$dps/registrations/PUT/iotdps-register/";
const STATUS = "$dps/registrations/GET/iotdps-get-operationstatus/";

/**
 * A query parameter's text exactly as sent (not percent-decoded): `$rid` is echoed verbatim, and
 * a decoded value could put characters into the answer topic that MQTT forbids (`#`, `+`, NUL).
 */
export function rawParam(query: string, name: string): string | null {
  for (const part of query.split("&")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq) === name) return part.slice(eq + 1);
  }
  return null;
}

export function parseDpsRequest(topic: string): DpsRequest {
  const q = topic.indexOf("?");
  if (q < 0) return { kind: "unknown" };
  const base = topic.slice(0, q);
  const query = new URLSearchParams(topic.slice(q + 1));
  const rid = rawParam(topic.slice(q + 1), "$rid");
  if (rid === null || rid === "") return { kind: "unknown" };
  if (base === REGISTER) return { kind: "register", rid };
  if (base === STATUS) {
    const operationId = query.get("operationId");
    return operationId ? { kind: "operationStatus", rid, operationId } : { kind: "unknown" };
  }
  return { kind: "unknown" };
}

export const RESPONSE_FILTER = "$dps/registrations/res/#";

/** `$dps/registrations/res/{status}/?$rid={rid}[&retry-after={s}]`; `$rid` echoed verbatim. */
export const responseTopic = (status: number, rid: string, retryAfter?: number): string =>
  `$dps/registrations/res/${status}/?$rid=${rid}${retryAfter !== undefined ? `&retry-after=${retryAfter}` : ""}`;
