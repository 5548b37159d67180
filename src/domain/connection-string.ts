// `HostName=…;SharedAccessKeyName=…;SharedAccessKey=…` (management.md §2-3). Keys may contain
// '=' (base64 padding), so each part splits at its first '='.
export interface SharedAccessConnectionString {
  hostName: string;
  keyName: string;
  key: string;
}

export function parseConnectionString(text: string): SharedAccessConnectionString | undefined {
  const fields = new Map<string, string>();
  for (const part of text.split(";")) {
    if (part.trim() === "") continue;
    const eq = part.indexOf("=");
    if (eq <= 0) return undefined;
    fields.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  const hostName = fields.get("hostname");
  const keyName = fields.get("sharedaccesskeyname");
  const key = fields.get("sharedaccesskey");
  if (!hostName || !keyName || !key) return undefined;
  return { hostName, keyName, key };
}

export const formatConnectionString = (c: SharedAccessConnectionString): string =>
  `HostName=${c.hostName};SharedAccessKeyName=${c.keyName};SharedAccessKey=${c.key}`;
