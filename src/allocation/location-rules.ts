// Source-address → location rules for lowest-latency allocation (behaviors.md §4.3). Rules are compiled once into
// integer network/mask pairs so a lookup on the registration hot path is a parse plus a few integer comparisons.

export interface LocationRule {
  /** An IPv4 address (`1.2.3.4`) or CIDR block (`10.0.0.0/8`). */
  ipMask: string;
  /** Azure-style region; normalised like management.md §1 ("West US" → "westus"). */
  location: string;
}

/** Lower-case and drop all whitespace: "West US" → "westus" (management.md §1, rule 19). */
export function normalizeLocation(location: string): string {
  return location.replace(/\s+/g, "").toLowerCase();
}

/** Parse a strict dotted-quad IPv4 address (decimal, no leading zeros) into an unsigned 32-bit integer. */
function parseIPv4(text: string, start: number, end: number): number | undefined {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (digits > 0 && octet === 0) return undefined; // leading zero ("010" would be octal in some parsers)
      octet = octet * 10 + (c - 48);
      if (octet > 255) return undefined;
      digits++;
    } else if (c === 46 /* . */) {
      if (digits === 0 || dots === 3) return undefined;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else {
      return undefined;
    }
  }
  if (digits === 0 || dots !== 3) return undefined;
  return value * 256 + octet;
}

/** Parse 1–4 hex digits of an IPv6 group; undefined if malformed. */
function parseHexGroup(text: string, start: number, end: number): number | undefined {
  if (end <= start || end - start > 4) return undefined;
  let value = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i) | 0x20; // ASCII lower-case for letters; digits are unaffected
    if (c >= 48 && c <= 57) value = value * 16 + (c - 48);
    else if (c >= 97 && c <= 102) value = value * 16 + (c - 87);
    else return undefined;
  }
  return value;
}

const MAPPED_PREFIXES = ["::ffff:", "0:0:0:0:0:ffff:"] as const;

/**
 * A source address as an unsigned 32-bit IPv4 value: plain IPv4, or IPv4-mapped IPv6 (`::ffff:127.0.0.2`,
 * `::ffff:7f00:2`, `0:0:0:0:0:ffff:…`; any case). Anything else (real IPv6, garbage) → undefined.
 */
export function sourceIPv4(address: string): number | undefined {
  if (address.indexOf(":") < 0) return parseIPv4(address, 0, address.length);
  for (const prefix of MAPPED_PREFIXES) {
    if (address.length <= prefix.length || address.slice(0, prefix.length).toLowerCase() !== prefix) continue;
    const start = prefix.length;
    const colon = address.indexOf(":", start);
    if (colon < 0) return parseIPv4(address, start, address.length);
    // Hex form: ::ffff:hhhh:hhhh
    const high = parseHexGroup(address, start, colon);
    const low = parseHexGroup(address, colon + 1, address.length);
    return high === undefined || low === undefined ? undefined : high * 65536 + low;
  }
  return undefined;
}

interface ParsedMask {
  network: number;
  mask: number;
}

function parseMask(text: string): ParsedMask | undefined {
  const trimmed = text.trim();
  const slash = trimmed.indexOf("/");
  const end = slash < 0 ? trimmed.length : slash;
  const address = parseIPv4(trimmed, 0, end);
  if (address === undefined) return undefined;
  let prefix = 32;
  if (slash >= 0) {
    const bits = trimmed.slice(slash + 1);
    if (!/^(?:[0-9]|[12][0-9]|3[0-2])$/.test(bits)) return undefined;
    prefix = Number(bits);
  }
  // `<<` works on 32 bits, so /0 needs its own case; `>>> 0` keeps the values unsigned.
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  // Host bits set in the base (`10.1.2.3/16`) are ignored: the rule covers the enclosing block.
  return { network: (address & mask) >>> 0, mask };
}

/** True for an IPv4 address or CIDR block (`1.2.3.4`, `10.0.0.0/8`, `0.0.0.0/0`); IPv6 masks are not supported. */
export function isValidIpMask(mask: string): boolean {
  return parseMask(mask) !== undefined;
}

/**
 * Compile rules into a lookup: the normalised location of the first rule matching the address, else undefined.
 * Throws an Error naming the offending rule if a mask or location is invalid.
 */
export function compileLocationRules(rules: readonly LocationRule[]): (address: string) => string | undefined {
  const count = rules.length;
  const networks = new Uint32Array(count);
  const masks = new Uint32Array(count);
  const locations: string[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const rule = rules[i] as LocationRule;
    const parsed = parseMask(rule.ipMask);
    if (parsed === undefined) {
      throw new Error(
        `location rule ${i}: invalid ipMask ${JSON.stringify(rule.ipMask)}; expected an IPv4 address or CIDR block such as "10.0.0.0/8"`,
      );
    }
    const location = normalizeLocation(rule.location);
    if (location === "") throw new Error(`location rule ${i} (${rule.ipMask}): location must not be empty`);
    networks[i] = parsed.network;
    masks[i] = parsed.mask;
    locations[i] = location;
  }
  return (address: string): string | undefined => {
    if (count === 0) return undefined;
    const ip = sourceIPv4(address);
    if (ip === undefined) return undefined;
    for (let i = 0; i < count; i++) {
      if ((ip & (masks[i] as number)) >>> 0 === networks[i]) return locations[i];
    }
    return undefined;
  };
}
