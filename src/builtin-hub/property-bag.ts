// Message property bags (iothub-api.md §6.4, §7): URL-query encoded on MQTT topics,
// `iothub-*` headers over HTTP. System properties are `$.`-prefixed on MQTT.
export interface MessageProperties {
  /** messageId, correlationId, contentType, contentEncoding, userId, to, expiryTimeUtc, outputName. */
  system: Record<string, string>;
  /** Application properties. */
  app: Record<string, string>;
}

const SYSTEM_BY_BAG_KEY: Record<string, string> = {
  "$.mid": "messageId",
  "$.cid": "correlationId",
  "$.ct": "contentType",
  "$.ce": "contentEncoding",
  "$.uid": "userId",
  "$.to": "to",
  "$.exp": "expiryTimeUtc",
  "$.on": "outputName",
};

/** Parse `%24.mid=m1&alert=high%20temp` (the part of the topic after `messages/events/`). */
export function parsePropertyBag(bag: string): MessageProperties {
  const out: MessageProperties = { system: {}, app: {} };
  if (bag === "") return out;
  for (const [key, value] of new URLSearchParams(bag)) {
    const system = SYSTEM_BY_BAG_KEY[key];
    if (system) out.system[system] = value;
    else if (!key.startsWith("$.")) out.app[key] = value;
  }
  return out;
}

const SYSTEM_BY_HEADER: Record<string, string> = {
  "iothub-messageid": "messageId",
  "iothub-correlationid": "correlationId",
  "iothub-contenttype": "contentType",
  "iothub-contentencoding": "contentEncoding",
  "iothub-userid": "userId",
  "iothub-to": "to",
  "iothub-expiry": "expiryTimeUtc",
};

/** Properties of an HTTP telemetry message: `iothub-*` headers, `iothub-app-*` application ones. */
export function propertiesFromHeaders(headers: Record<string, string | string[] | undefined>): MessageProperties {
  const out: MessageProperties = { system: {}, app: {} };
  for (const [name, raw] of Object.entries(headers)) {
    const value = Array.isArray(raw) ? raw.join(",") : raw;
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    const system = SYSTEM_BY_HEADER[lower];
    if (system) out.system[system] = value;
    else if (lower.startsWith("iothub-app-")) out.app[lower.slice("iothub-app-".length)] = value;
  }
  return out;
}
