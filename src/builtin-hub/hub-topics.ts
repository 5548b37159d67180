// The device MQTT topic grammar of IoT Hub (iothub-api.md §6.3-6.6). Pure.

export type HubPublish =
  | { kind: "telemetry"; deviceId: string; moduleId?: string; bag: string }
  | { kind: "twinGet"; rid: string }
  | { kind: "reportedPatch"; rid: string }
  | { kind: "methodResponse"; rid: string; status: number }
  | { kind: "unknown" };

/** `{host}/{deviceId}[/{moduleId}]/?{query}` → its parts; undefined when it is not that shape. */
export function parseHubUsername(username: string): { host: string; deviceId: string; moduleId?: string } | undefined {
  const m = /^([^/]+)\/([^/?]+)(?:\/([^/?]+))?\/?(?:\?.*)?$/.exec(username);
  if (!m?.[1] || !m[2]) return undefined;
  return { host: m[1], deviceId: m[2], ...(m[3] ? { moduleId: m[3] } : {}) };
}

/** `$rid` exactly as sent: it is echoed verbatim into the answer topic (see dps-topics.ts). */
const ridOf = (query: string): string | undefined => {
  for (const part of query.split("&")) if (part.startsWith("$rid=")) return part.slice(5);
  return undefined;
};

export function classifyPublish(topic: string): HubPublish {
  if (topic.startsWith("devices/")) {
    const rest = topic.slice("devices/".length);
    const slash = rest.indexOf("/");
    const deviceId = rest.slice(0, slash);
    const tail = rest.slice(slash);
    if (slash > 0 && tail.startsWith("/messages/events")) {
      return { kind: "telemetry", deviceId, bag: tail.slice("/messages/events".length).replace(/^\//, "") };
    }
    // A module's: `devices/{deviceId}/modules/{moduleId}/messages/events/…`.
    const m = /^\/modules\/([^/]+)\/messages\/events(?:\/(.*))?$/.exec(tail);
    if (slash > 0 && m?.[1]) return { kind: "telemetry", deviceId, moduleId: m[1], bag: m[2] ?? "" };
    return { kind: "unknown" };
  }
  const q = topic.indexOf("?");
  const base = q < 0 ? topic : topic.slice(0, q);
  const rid = ridOf(q < 0 ? "" : topic.slice(q + 1));
  if (rid !== undefined && base === "$iothub/twin/GET/") return { kind: "twinGet", rid };
  if (rid !== undefined && base === "$iothub/twin/PATCH/properties/reported/") return { kind: "reportedPatch", rid };
  // A direct method's answer: `$iothub/methods/res/{status}/?$rid={rid}` (iothub-api.md §6.6).
  const method = /^\$iothub\/methods\/res\/(\d{1,3})\/$/.exec(base);
  if (rid !== undefined && method) return { kind: "methodResponse", rid, status: Number(method[1]) };
  return { kind: "unknown" };
}

export const DESIRED_FILTER = "$iothub/twin/PATCH/properties/desired/#";
export const METHODS_FILTER = "$iothub/methods/POST/#";

/** The filters the SDK subscribes to, granted at QoS ≤ 1; anything else is refused (0x80). */
export function grantFor(filter: string, deviceId: string, requestedQos: number): number {
  const allowed =
    filter === "$iothub/twin/res/#" ||
    filter === DESIRED_FILTER ||
    filter === METHODS_FILTER ||
    filter === devicebound(deviceId);
  return allowed ? Math.min(requestedQos, 1) : 0x80;
}

export const twinResponseTopic = (status: number, rid: string, version?: number): string =>
  `$iothub/twin/res/${status}/?$rid=${rid}${version !== undefined ? `&$version=${version}` : ""}`;

export const desiredTopic = (version: number): string => `$iothub/twin/PATCH/properties/desired/?$version=${version}`;

/** A direct method call to the device: `$iothub/methods/POST/{name}/?$rid={rid}`. */
export const methodRequestTopic = (name: string, rid: string): string => `$iothub/methods/POST/${name}/?$rid=${rid}`;

/** The filter a device subscribes to for its cloud-to-device messages. */
export const devicebound = (deviceId: string): string => `devices/${deviceId}/messages/devicebound/#`;

/**
 * The property bag a cloud-to-device message's topic carries after `devicebound/`: system
 * properties as `$.mid`, `$.cid`, `$.to`, `$.ct`, `$.ce`, `$.exp`, the ack request and the
 * application properties, URL-encoded as IoT Hub sends them.
 */
export function c2dPropertyBag(m: {
  messageId: string;
  correlationId?: string;
  to: string;
  ack: string;
  expiryTime: string;
  contentType?: string;
  contentEncoding?: string;
  properties: Record<string, string>;
}): string {
  const pairs: [string, string][] = [
    ["$.mid", m.messageId],
    ...(m.correlationId ? ([["$.cid", m.correlationId]] as [string, string][]) : []),
    ["$.to", m.to],
    ["$.exp", m.expiryTime],
    ...(m.contentType ? ([["$.ct", m.contentType]] as [string, string][]) : []),
    ...(m.contentEncoding ? ([["$.ce", m.contentEncoding]] as [string, string][]) : []),
    ["iothub-ack", m.ack],
    ...Object.entries(m.properties),
  ];
  return pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join("&");
}
