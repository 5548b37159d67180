// IP filter rules of a provisioning service (management.md §4.1, behaviors.md §10.2): validated
// once, compiled once per change into a matcher, evaluated in order with the first match winning
// and no match accepting. Public network access "Disabled" admits only the operator's private
// networks and ignores the rules (§10.3). Pure: no sockets here.

export type IpFilterTarget = "all" | "serviceApi" | "deviceApi";

export interface IpFilterRule {
  filterName: string;
  action: "Accept" | "Reject";
  ipMask: string;
  target: IpFilterTarget;
}

export const MAX_IP_FILTER_RULES = 100;

const NAME = /^[A-Za-z0-9\-:/\\.+%_#*?!(),=@;']{1,128}$/;
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** An IPv4 address as a 32-bit number, or undefined. */
function ipv4(text: string): number | undefined {
  const m = IPV4.exec(text);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return parts.reduce((n, p) => n * 256 + p, 0);
}

interface Cidr {
  base: number;
  mask: number;
}

/** `a.b.c.d` or `a.b.c.d/n`; undefined when it is neither. */
export function parseCidr(text: string): Cidr | undefined {
  const [address, bits, extra] = text.trim().split("/");
  if (extra !== undefined || address === undefined) return undefined;
  const base = ipv4(address);
  const n = bits === undefined ? 32 : /^\d{1,2}$/.test(bits) ? Number(bits) : Number.NaN;
  if (base === undefined || !(n >= 0 && n <= 32)) return undefined;
  const mask = n === 0 ? 0 : (0xffffffff << (32 - n)) >>> 0;
  return { base: (base & mask) >>> 0, mask };
}

/** The IPv4 address a socket reports, with an IPv4-mapped IPv6 form unwrapped; else undefined. */
export function socketIpv4(address: string): number | undefined {
  return ipv4(address.startsWith("::ffff:") ? address.slice(7) : address);
}

const inCidr = (ip: number, c: Cidr): boolean => (ip & c.mask) >>> 0 === c.base;

/** Field names are accepted in any case (the docs' templates write `IpFilterRules`, `FilterName`). */
function field(o: Record<string, unknown>, name: string): unknown {
  const key = Object.keys(o).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : o[key];
}

/** The rules of a management request body; throws a message naming what is wrong. */
/** `max`: how many rules a service may have (PROVISIO_MAX_IP_FILTER_RULES); 0 = no limit. */
export function parseIpFilterRules(value: unknown, max = MAX_IP_FILTER_RULES): IpFilterRule[] {
  if (!Array.isArray(value)) throw new Error("'ipFilterRules' must be an array.");
  if (max > 0 && value.length > max) {
    throw new Error(`'ipFilterRules' holds at most ${max} rules (PROVISIO_MAX_IP_FILTER_RULES), not ${value.length}.`);
  }
  const names = new Set<string>();
  return value.map((raw, i) => {
    const at = `ipFilterRules[${i}]`;
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new Error(`${at} must be an object.`);
    const r = raw as Record<string, unknown>;
    const filterName = field(r, "filterName");
    if (typeof filterName !== "string" || !NAME.test(filterName)) {
      throw new Error(`${at}.filterName must be 1-128 ASCII letters, digits or - : / \\ . + % _ # * ? ! ( ) , = @ ; '`);
    }
    if (names.has(filterName.toLowerCase())) throw new Error(`${at}.filterName '${filterName}' is used twice.`);
    names.add(filterName.toLowerCase());
    const action = field(r, "action");
    const act = typeof action === "string" ? action.toLowerCase() : "";
    if (act !== "accept" && act !== "reject") throw new Error(`${at}.action must be Accept or Reject.`);
    const ipMask = field(r, "ipMask");
    if (typeof ipMask !== "string" || !parseCidr(ipMask)) {
      throw new Error(`${at}.ipMask must be an IPv4 address or IPv4 CIDR range such as 10.0.0.0/8.`);
    }
    const target = field(r, "target") ?? "all";
    const t = typeof target === "string" ? target.toLowerCase() : "";
    const targets: Record<string, IpFilterTarget> = { all: "all", serviceapi: "serviceApi", deviceapi: "deviceApi" };
    const resolved = targets[t];
    if (!resolved) throw new Error(`${at}.target must be all, serviceApi or deviceApi.`);
    return { filterName, action: act === "accept" ? "Accept" : "Reject", ipMask: ipMask.trim(), target: resolved };
  });
}

export type NetworkVerdict = { admit: true; rule?: string } | { admit: false; rule: string };

export interface NetworkAccess {
  publicNetworkAccess: "Enabled" | "Disabled";
  ipFilterRules: readonly IpFilterRule[];
}

/** A compiled matcher: who may reach an instance's device or service API. */
export type NetworkFilter = (address: string, api: "serviceApi" | "deviceApi") => NetworkVerdict;

/**
 * Compiles an instance's settings. `privateNetworks` are the CIDR ranges that count as private
 * when public network access is disabled (IPv6 loopback and unique-local addresses count too).
 */
export function compileNetworkFilter(access: NetworkAccess, privateNetworks: readonly string[]): NetworkFilter {
  if (access.publicNetworkAccess === "Disabled") {
    const ranges = privateNetworks.map((c) => parseCidr(c)).filter((c): c is Cidr => c !== undefined);
    return (address) => {
      const ip = socketIpv4(address);
      const inside = ip === undefined ? isPrivateIpv6(address) : ranges.some((c) => inCidr(ip, c));
      return inside ? { admit: true } : { admit: false, rule: "publicNetworkAccess: Disabled" };
    };
  }
  const rules = access.ipFilterRules.map((r) => ({ ...r, cidr: parseCidr(r.ipMask) as Cidr }));
  if (rules.length === 0) return () => ({ admit: true });
  return (address, api) => {
    const ip = socketIpv4(address);
    // IPv4 rules say nothing about an IPv6 client: no match, accepted (behaviors.md §10.2).
    if (ip === undefined) return { admit: true };
    for (const r of rules) {
      if (r.target !== "all" && r.target !== api) continue;
      if (inCidr(ip, r.cidr))
        return r.action === "Accept" ? { admit: true, rule: r.filterName } : { admit: false, rule: r.filterName };
    }
    return { admit: true };
  };
}

/** ::1 and fc00::/7 (unique local addresses). */
function isPrivateIpv6(address: string): boolean {
  const a = address.toLowerCase();
  return a === "::1" || /^f[cd][0-9a-f]{2}:/.test(a);
}

/** Loopback and RFC 1918: the default of PROVISIO_PRIVATE_NETWORKS. */
export const DEFAULT_PRIVATE_NETWORKS = ["127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];
