// Every setting of `provisio serve`, in one table: its flag, its environment variable, its default,
// how it is read and what it means (design.md, "Running it"). The CLI's options, `--help`, the
// loader and the README's settings table (test/server/config.test.ts keeps them in step) all come
// from here. A flag beats the environment, which beats the default.
import { DEFAULT_RETRY_DELAYS_MS, DEFAULT_WEBHOOK_TIMEOUT_MS } from "../allocation/custom-webhook.js";
import { type FaultRule, parseFaultRules } from "../domain/faults.js";
import { parseCidr } from "../domain/ip-filter.js";
import type { Limits } from "../domain/limits.js";
import { checkIssuerUrl, type DataRole, parseRoleMapping } from "../security/oidc.js";

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

export interface ServeConfig extends Limits {
  dataDir: string;
  /** A PostgreSQL database shared by every node; absent: SQLite in the data directory. */
  databaseUrl: string | undefined;
  host: string;
  /** Address the listeners bind. */
  bind: string;
  httpsPort: number;
  mqttPort: number;
  amqpPort: number;
  /** Prometheus metrics over plain HTTP at /metrics; "off" serves none. */
  metricsPort: number | "off";
  /** Address the metrics listener binds: loopback unless the operator opens it. */
  metricsBind: string;
  /** How many built-in IoT hubs to run. */
  hubs: number;
  logLevel: (typeof LOG_LEVELS)[number];
  /** JSON lines, readable lines, or pretty on a terminal and JSON elsewhere. */
  logFormat: "auto" | "json" | "pretty";
  /** Whether the start-up banner shows connection strings (never in logs). */
  showSecrets: boolean;
  /** The key that seals secrets at rest, as given (else DIR/master.key). */
  masterKey: string | undefined;
  /** How long a register call waits for the result before answering "assigning" (ms). */
  registerWaitMs: number;
  /** Open connections per listener; undefined: a share of the open-files limit. */
  maxConnections: number | undefined;
  /** Open connections per listener from one source address. */
  maxConnectionsPerAddress: number;
  /** Register calls one node works on at once before it sheds (429); 0 = no bound. */
  maxInFlight: number;
  /** How long a node's claim on a registration still working lasts without renewal (ms). */
  operationLeaseMs: number;
  /** `fast` (no rate limits, answers at once) or `azure` (DPS's limits and its polling). */
  profile: "fast" | "azure";
  /** Scale units of every provisioning service: rate limits are per unit (behaviors.md §9). */
  units: number;
  /** The Retry-After of an `assigning` answer (s). */
  pollAfterSeconds: number;
  /** Fault rules for rehearsals (`--fault`, repeatable). */
  fault: FaultRule[];
  /** Custom allocation webhook: per-call timeout (ms) and number of retries (behaviors.md §4.5). */
  webhookTimeoutMs: number;
  webhookRetries: number;
  /** DPS's resource log lines also go to this file (JSON lines), when given. */
  diagnosticLog: string | undefined;
  /** Server certificate chains and their keys an operator brings (PEM files); none: development ones. */
  tlsCert: string[];
  tlsKey: string[];
  /** The CA devices trust for the operator's certificates (provisio.json's caFile). */
  tlsCa: string | undefined;
  /** An OpenID Connect issuer whose bearer tokens the service and management APIs take. */
  oidcIssuer: string | undefined;
  /** A token's `aud` must be one of these. */
  oidcAudience: string[];
  /** The issuer's keys, when not where its discovery document says. */
  oidcJwksUrl: string | undefined;
  /** The token claims that hold role or group names. */
  oidcRoleClaims: string[];
  /** Claim value → DPS data role. */
  oidcRoles: Record<string, DataRole>;
  /** The web console's client id at the issuer (authorization code with PKCE); none: SAS sign-in only. */
  oidcConsoleClientId: string | undefined;
  /** The scopes the console asks the issuer for. */
  oidcConsoleScope: string;
  /** The oldest TLS version every listener takes: 1.2 (DPS's minimum) or 1.3. */
  minTlsVersion: "1.2" | "1.3";
  /** What counts as private when an instance's public network access is Disabled (IPv4 CIDRs). */
  privateNetworks: string[];
  /** Where to dial linked hubs instead of their host name on port 443, by lower-cased host name. */
  hubAddresses: Record<string, { host: string; port: number }>;
  /** How the engine reaches built-in hubs: in-process (default) or over their REST API. */
  builtinHubClient: "in-process" | "rest";
  /** Where each built-in hub posts its devices' telemetry, by hub name. */
  telemetryWebhooks: Record<string, string[]>;
}

type Key = keyof ServeConfig;

export interface Setting {
  key: Key;
  /** The command-line option, if the setting has one: `--data-dir <dir>`. */
  flag?: string;
  env: string;
  /** The default as text (parsed like any value); undefined: none. */
  default: string | undefined;
  /** What it means, for `--help` and the README. */
  doc: string;
  /** The default under `--profile azure`, when it differs (DPS's published limits). */
  azure?: string;
  /** The flag may be given more than once; its values are joined with this separator. */
  repeatable?: "," | ";";
  /** Commander passes `true` for a flag without a value (`--show-secrets`). */
  parse(text: string, name: string): ServeConfig[Key];
}

export function parsePort(text: string, what: string): number {
  const n = Number(text);
  if (!/^\d{1,5}$/.test(text) || n > 65535) throw new Error(`${what} must be a port number 0-65535, not '${text}'.`);
  return n;
}

function wholeNumber(max: number, unit: string) {
  return (text: string, what: string): number => {
    const n = Number(text);
    if (!/^\d{1,9}$/.test(text) || n > max)
      throw new Error(`${what} must be a whole number of ${unit} 0-${max}, not '${text}'.`);
    return n;
  };
}

function oneOf<T extends string>(choices: readonly T[]) {
  return (text: string, what: string): T => {
    const found = choices.find((c) => c === text.toLowerCase());
    if (!found) throw new Error(`${what} must be one of ${choices.join(", ")}, not '${text}'.`);
    return found;
  };
}

const text = (value: string): string => value;

/** A switch: `--show-secrets` alone (commander passes true), or true/false, 1/0, yes/no as text. */
function flagBoolean(value: string | boolean, what: string): boolean {
  if (typeof value === "boolean") return value;
  if (/^(true|1|yes)$/i.test(value)) return true;
  if (/^(false|0|no)$/i.test(value)) return false;
  throw new Error(`${what} must be true or false, not '${value}'.`);
}

/** A DPS limit (domain/limits.ts): a whole number, 0 unlimited, with its value under `--profile azure`. */
function limit(key: keyof Limits, env: string, fast: string, azure: string, doc: string, unit: string): Setting {
  return { key, env, default: fast, azure, doc: `${doc}; 0 is unlimited`, parse: wholeNumber(1_000_000_000, unit) };
}

const fileList = (value: string): string[] =>
  value
    .split(",")
    .map((f) => f.trim())
    .filter((f) => f !== "");

/** `hub.example.net=10.0.0.5:8443,other.example.net=gw.lan` (port 443 when not given). */
/** `hub-1=https://a/ingest,hub-1=http://127.0.0.1:9000/x,hub-2=…`: a hub may have several. */
function telemetryWebhooks(value: string, what: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const entry of value
    .split(",")
    .map((e) => e.trim())
    .filter((e) => e !== "")) {
    const eq = entry.indexOf("=");
    const hub = entry.slice(0, eq).trim().toLowerCase();
    const url = entry.slice(eq + 1).trim();
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      parsed = undefined;
    }
    if (eq <= 0 || !/^hub-\d+$/.test(hub) || !parsed || !/^https?:$/.test(parsed.protocol)) {
      throw new Error(`${what} must list hub-N=http(s)://… entries, not '${entry}'.`);
    }
    out[hub] = [...(out[hub] ?? []), url];
  }
  return out;
}

function hubAddresses(value: string, what: string): Record<string, { host: string; port: number }> {
  const out: Record<string, { host: string; port: number }> = {};
  for (const entry of value
    .split(",")
    .map((e) => e.trim())
    .filter((e) => e !== "")) {
    const m = /^([^=\s]+)=(\[[^\]]+\]|[^:\s]+)(?::(\d{1,5}))?$/.exec(entry);
    const port = m?.[3] === undefined ? 443 : Number(m[3]);
    if (!m || port < 1 || port > 65535) {
      throw new Error(`${what} must list hostName=address[:port] entries, not '${entry}'.`);
    }
    out[(m[1] as string).toLowerCase()] = { host: (m[2] as string).replace(/^\[|\]$/g, ""), port };
  }
  return out;
}

function databaseUrl(value: string, what: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`${what} must be a postgres:// URL, not '${value}'.`);
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
    throw new Error(`${what} must be a postgres:// URL; '${url.protocol}' databases are not supported.`);
  }
  return value;
}

export const SETTINGS: readonly Setting[] = [
  {
    key: "dataDir",
    flag: "--data-dir <dir>",
    env: "PROVISIO_DATA_DIR",
    default: "./provisio-data",
    doc: "data directory: database, TLS material, provisio.json",
    parse: text,
  },
  {
    key: "databaseUrl",
    flag: "--database-url <url>",
    env: "PROVISIO_DATABASE_URL",
    default: undefined,
    doc: "a PostgreSQL database (`postgres://user:password@host:port/db`) that several nodes share, instead of SQLite in the data directory; needs PROVISIO_MASTER_KEY",
    parse: databaseUrl,
  },
  {
    key: "host",
    flag: "--host <name>",
    env: "PROVISIO_HOST",
    default: "localhost",
    doc: "host name devices and clients use; the server certificate covers it",
    parse: text,
  },
  {
    key: "bind",
    flag: "--bind <address>",
    env: "PROVISIO_BIND",
    default: "0.0.0.0",
    doc: "address the listeners bind",
    parse: text,
  },
  {
    key: "httpsPort",
    flag: "--https-port <n>",
    env: "PROVISIO_HTTPS_PORT",
    default: "8443",
    doc: "HTTPS port (device, service, management and hub APIs, WebSockets); 0 = any",
    parse: parsePort,
  },
  {
    key: "mqttPort",
    flag: "--mqtt-port <n>",
    env: "PROVISIO_MQTT_PORT",
    default: "8883",
    doc: "MQTT port; 0 = any",
    parse: parsePort,
  },
  {
    key: "amqpPort",
    flag: "--amqp-port <n>",
    env: "PROVISIO_AMQP_PORT",
    default: "5671",
    doc: "AMQP port; 0 = any",
    parse: parsePort,
  },
  {
    key: "metricsPort",
    flag: "--metrics-port <n|off>",
    env: "PROVISIO_METRICS_PORT",
    default: "9464",
    doc: "Prometheus metrics at `/metrics` over plain HTTP; 0 = any port, `off` = none",
    parse: (value, what) => (value === "off" ? "off" : parsePort(value, what)),
  },
  {
    key: "metricsBind",
    flag: "--metrics-bind <addr>",
    env: "PROVISIO_METRICS_BIND",
    default: "127.0.0.1",
    doc: "address the metrics listener binds (loopback by default: metrics are not for everyone)",
    parse: text,
  },
  {
    key: "hubs",
    flag: "--hubs <n>",
    env: "PROVISIO_HUBS",
    default: "1",
    doc: "number of built-in IoT hubs, 0-50",
    parse: wholeNumber(50, "hubs"),
  },
  {
    key: "logLevel",
    env: "PROVISIO_LOG_LEVEL",
    default: "info",
    doc: `log level (${LOG_LEVELS.join(", ")})`,
    parse: oneOf(LOG_LEVELS),
  },
  {
    key: "logFormat",
    flag: "--log-format <format>",
    env: "PROVISIO_LOG_FORMAT",
    default: "auto",
    doc: "logs on stdout as json (JSON lines) or pretty (a readable line each, and a start-up banner); auto: pretty on a terminal, json elsewhere",
    parse: oneOf(["auto", "json", "pretty"] as const),
  },
  {
    key: "showSecrets",
    flag: "--show-secrets",
    env: "PROVISIO_SHOW_SECRETS",
    default: "false",
    doc: "print the service and hub connection strings in the start-up banner (they are always in provisio.json)",
    parse: flagBoolean,
  },
  {
    key: "masterKey",
    env: "PROVISIO_MASTER_KEY",
    default: undefined,
    doc: "the key that encrypts secrets at rest, 64 hex digits or base64 of 32 bytes (else DIR/master.key)",
    parse: text,
  },
  {
    key: "registerWaitMs",
    env: "PROVISIO_REGISTER_WAIT_MS",
    default: "1500",
    azure: "0",
    doc: "how long a register call waits for its result before answering `assigning` (202 + Retry-After)",
    parse: wholeNumber(600_000, "milliseconds"),
  },
  {
    key: "tlsCert",
    flag: "--tls-cert <file>",
    env: "PROVISIO_TLS_CERT",
    default: "",
    repeatable: ",",
    doc: "a server certificate to serve instead of the development one: a PEM file with the leaf first, then its intermediates; give one RSA and one ECDSA (repeat the flag, or comma-separate) and each client gets the one it can use; re-read on SIGHUP",
    parse: fileList,
  },
  {
    key: "tlsKey",
    flag: "--tls-key <file>",
    env: "PROVISIO_TLS_KEY",
    default: "",
    repeatable: ",",
    doc: "the private key (PEM, unencrypted) of each --tls-cert, in the same order",
    parse: fileList,
  },
  {
    key: "tlsCa",
    flag: "--tls-ca <file>",
    env: "PROVISIO_TLS_CA",
    default: undefined,
    doc: "the CA certificate devices trust for --tls-cert (written to provisio.json as caFile); default: the last certificate of the first --tls-cert chain",
    parse: text,
  },
  {
    key: "oidcIssuer",
    flag: "--oidc-issuer <url>",
    env: "PROVISIO_OIDC_ISSUER",
    default: undefined,
    doc: "an OpenID Connect issuer (https; http only on loopback) whose bearer tokens the service and management APIs take beside SAS tokens, as DPS takes Azure AD ones; its roles map to DPS's data roles (PROVISIO_OIDC_ROLES)",
    parse: checkIssuerUrl,
  },
  {
    key: "oidcAudience",
    env: "PROVISIO_OIDC_AUDIENCE",
    default: "https://azure-devices-provisioning.net,https://iothubs.azure.net",
    doc: "the audiences (`aud`) a bearer token may have, comma-separated; the default are the two DPS clients ask for",
    parse: fileList,
  },
  {
    key: "oidcJwksUrl",
    env: "PROVISIO_OIDC_JWKS_URL",
    default: undefined,
    doc: "where the issuer's signing keys are, when not at the `jwks_uri` of its discovery document",
    parse: checkIssuerUrl,
  },
  {
    key: "oidcRoleClaims",
    env: "PROVISIO_OIDC_ROLE_CLAIMS",
    default: "roles,groups",
    doc: "the token claims that hold role or group names, comma-separated",
    parse: fileList,
  },
  {
    key: "oidcRoles",
    env: "PROVISIO_OIDC_ROLES",
    default:
      "DeviceProvisioningService.DataContributor=contributor,DeviceProvisioningService.DataReader=reader,DeviceProvisioningService.ServiceConfig=config",
    doc: "which role or group names grant which role: `name=contributor|reader|config`, comma-separated. contributor: DPS's Data Contributor (enrollments and registrations, read and write); reader: Data Reader; config: the management API (ServiceConfig)",
    parse: parseRoleMapping,
  },
  {
    key: "oidcConsoleClientId",
    flag: "--oidc-console-client-id <id>",
    env: "PROVISIO_OIDC_CONSOLE_CLIENT_ID",
    default: undefined,
    doc: "the web console's client id at the OpenID Connect issuer (a public client, authorization code with PKCE, redirect URI the console's URL `https://{host}:{port}/`); with it the console offers sign-in through the issuer beside connection strings",
    parse: text,
  },
  {
    key: "oidcConsoleScope",
    env: "PROVISIO_OIDC_CONSOLE_SCOPE",
    default: "openid profile",
    doc: "the scopes the console asks the issuer for, space-separated (for Azure AD: `openid profile https://azure-devices-provisioning.net/.default`)",
    parse: text,
  },
  {
    key: "minTlsVersion",
    env: "PROVISIO_MIN_TLS_VERSION",
    default: "1.2",
    doc: "the oldest TLS version every listener takes: 1.2 (DPS's minimum; 1.0 and 1.1 are never taken) or 1.3; with 1.3 a provisioning service may be given minTlsVersion 1.3",
    parse: oneOf(["1.2", "1.3"] as const),
  },
  {
    key: "privateNetworks",
    env: "PROVISIO_PRIVATE_NETWORKS",
    default: "127.0.0.0/8,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16",
    doc: "the networks (IPv4 CIDR, comma-separated) that count as private when a provisioning service's publicNetworkAccess is Disabled; IPv6 loopback and fc00::/7 always do",
    parse: (text, what) => {
      const list = text
        .split(",")
        .map((c) => c.trim())
        .filter((c) => c !== "");
      for (const c of list) if (!parseCidr(c)) throw new Error(`${what} must list IPv4 CIDR ranges, not '${c}'.`);
      return list;
    },
  },
  {
    key: "hubAddresses",
    env: "PROVISIO_HUB_ADDRESSES",
    default: "",
    doc: "where to reach linked IoT hubs instead of their host name on port 443: `hostName=address[:port]`, comma-separated (a hub behind a gateway, another Provisio's built-in hub); the hub's certificate is checked against Node's CAs plus NODE_EXTRA_CA_CERTS",
    parse: hubAddresses,
  },
  {
    key: "telemetryWebhooks",
    env: "PROVISIO_TELEMETRY_WEBHOOKS",
    default: "",
    doc: "where built-in hubs send their devices' telemetry: `hub-N=http(s)://…`, comma-separated (a hub may be named more than once); each message is POSTed as JSON, in order, retried three times",
    parse: telemetryWebhooks,
  },
  {
    key: "maxConnections",
    env: "PROVISIO_MAX_CONNECTIONS",
    default: undefined,
    doc: "open connections each listener (HTTPS, MQTT, AMQP) takes at once; past it new ones are closed at accept. Default: the open-files limit less a reserve (a tenth, at least 64) for the database, hubs and webhooks, shared by the three listeners",
    parse: wholeNumber(10_000_000, "connections"),
  },
  {
    key: "maxConnectionsPerAddress",
    env: "PROVISIO_MAX_CONNECTIONS_PER_ADDRESS",
    default: "500",
    doc: "open connections each listener takes from one source address; past it new ones from there are closed at accept, so one flood cannot starve other devices (raise it for large fleets behind one NAT address)",
    parse: wholeNumber(10_000_000, "connections"),
  },
  {
    key: "maxInFlight",
    env: "PROVISIO_MAX_IN_FLIGHT",
    default: "1000",
    doc: "register calls one node works on at once (attesting, or waiting for a hub or webhook); past it a register is answered 429 with a Retry-After spread over a few seconds, so a burst of devices cannot exhaust CPU and memory; 0 = no bound",
    parse: wholeNumber(1_000_000, "registrations"),
  },
  {
    key: "operationLeaseMs",
    env: "PROVISIO_OPERATION_LEASE_MS",
    default: "20000",
    doc: "a registration still working (answered `assigning`) belongs to the node carrying it, which renews its claim while it lives; a claim this old is a dead node's, and the next poll, on any node, fails the operation so the device registers again",
    parse: (text, what) => {
      const ms = wholeNumber(3_600_000, "milliseconds")(text, what);
      if (ms < 1_000) throw new Error(`${what} must be at least 1000 ms: a lease renewed every ${ms / 4} ms.`);
      return ms;
    },
  },
  {
    key: "profile",
    flag: "--profile <name>",
    env: "PROVISIO_PROFILE",
    default: "fast",
    doc: "`fast`: no rate limits and answers at once; `azure`: DPS's published limits, and every register answered `assigning` with Retry-After 3 so devices poll, as Azure does (each limit below can still be set on its own)",
    parse: oneOf(["fast", "azure"] as const),
  },
  {
    key: "units",
    flag: "--units <n>",
    env: "PROVISIO_UNITS",
    default: "1",
    doc: "scale units of every provisioning service (shown as sku.capacity): the rate limits are per unit",
    parse: (text, what) => {
      const n = wholeNumber(200, "units")(text, what);
      if (n < 1) throw new Error(`${what} must be at least 1.`);
      return n;
    },
  },
  limit(
    "registrationsPerMinute",
    "PROVISIO_REGISTRATIONS_PER_MINUTE",
    "0",
    "1000",
    "register calls per minute per provisioning service and unit",
    "registrations",
  ),
  limit(
    "serviceOperationsPerMinute",
    "PROVISIO_SERVICE_OPERATIONS_PER_MINUTE",
    "0",
    "1000",
    "service API operations per minute per provisioning service and unit",
    "operations",
  ),
  limit(
    "pollsPer10Seconds",
    "PROVISIO_POLLS_PER_10_SECONDS",
    "0",
    "5",
    "status lookups (operation and registration) per device in 10 seconds",
    "lookups",
  ),
  {
    key: "fault",
    flag: "--fault <rule>",
    env: "PROVISIO_FAULTS",
    default: "",
    repeatable: ";",
    doc: "a fault for rehearsals: `<429|500|delay=Ns> <share>% [instance=<name>] [group=<id>]` (e.g. `429 25% group=lab-devices`: every 4th registration of that group is answered 429); repeat the flag or separate with `;`",
    parse: (text) => parseFaultRules(text),
  },
  {
    key: "pollAfterSeconds",
    env: "PROVISIO_POLL_AFTER_SECONDS",
    default: "1",
    azure: "3",
    doc: "the Retry-After of an `assigning` answer, growing for registrations that work long",
    parse: (text, what) => {
      const n = wholeNumber(60, "seconds")(text, what);
      if (n < 1) throw new Error(`${what} must be at least 1.`);
      return n;
    },
  },
  limit(
    "maxRegistrations",
    "PROVISIO_MAX_REGISTRATIONS",
    "0",
    "1000000",
    "registration records per provisioning service",
    "records",
  ),
  limit(
    "maxEnrollments",
    "PROVISIO_MAX_ENROLLMENTS",
    "0",
    "1000000",
    "individual enrollments per provisioning service",
    "enrollments",
  ),
  limit(
    "maxX509Groups",
    "PROVISIO_MAX_X509_GROUPS",
    "0",
    "100",
    "X.509 enrollment groups per provisioning service",
    "groups",
  ),
  limit(
    "maxSymmetricKeyGroups",
    "PROVISIO_MAX_SYMMETRIC_KEY_GROUPS",
    "0",
    "100",
    "symmetric-key enrollment groups per provisioning service",
    "groups",
  ),
  limit(
    "maxCaCertificates",
    "PROVISIO_MAX_CA_CERTIFICATES",
    "25",
    "25",
    "CA certificates per provisioning service",
    "certificates",
  ),
  limit("maxLinkedHubs", "PROVISIO_MAX_LINKED_HUBS", "50", "50", "linked IoT hubs per provisioning service", "hubs"),
  limit(
    "maxIpFilterRules",
    "PROVISIO_MAX_IP_FILTER_RULES",
    "100",
    "100",
    "IP filter rules per provisioning service",
    "rules",
  ),
  {
    key: "webhookTimeoutMs",
    env: "PROVISIO_WEBHOOK_TIMEOUT_MS",
    default: String(DEFAULT_WEBHOOK_TIMEOUT_MS),
    doc: "custom allocation webhook: timeout of one call",
    parse: wholeNumber(600_000, "milliseconds"),
  },
  {
    key: "webhookRetries",
    env: "PROVISIO_WEBHOOK_RETRIES",
    default: String(DEFAULT_RETRY_DELAYS_MS.length),
    doc: "custom allocation webhook: retries of a call that timed out or answered ≥ 429 (1 s, 10 s, 19 s, …)",
    parse: wholeNumber(100, "retries"),
  },
  {
    key: "diagnosticLog",
    flag: "--diagnostic-log <file>",
    env: "PROVISIO_DIAGNOSTIC_LOG",
    default: undefined,
    doc: "also write DPS's resource log lines (DeviceOperations, ServiceOperations) to this file, one JSON object a line",
    parse: text,
  },
  {
    key: "builtinHubClient",
    env: "PROVISIO_BUILTIN_HUB_CLIENT",
    default: "in-process",
    doc: "`rest` makes the engine reach built-in hubs over their REST API like any hub",
    parse: oneOf(["in-process", "rest"] as const),
  },
];

/** The setting's value from the flag, else the environment, else its default (the profile's, if it has one). */
function resolveSetting(
  setting: Setting,
  flags: Partial<Record<Key, string>>,
  env: NodeJS.ProcessEnv,
  profile: "fast" | "azure" = "fast",
) {
  const flag = flags[setting.key];
  if (flag !== undefined) return setting.parse(flag, setting.flag?.split(" ")[0] ?? setting.env);
  const fromEnv = env[setting.env];
  // An empty variable is unset, as shells leave them.
  if (fromEnv !== undefined && fromEnv !== "") return setting.parse(fromEnv, setting.env);
  const fallback = profile === "azure" && setting.azure !== undefined ? setting.azure : setting.default;
  return fallback === undefined ? undefined : setting.parse(fallback, setting.env);
}

/** The whole configuration; a value that does not parse is an Error naming the flag or variable. */
export function loadServeConfig(
  flags: Partial<Record<Key, string>> = {},
  env: NodeJS.ProcessEnv = process.env,
): ServeConfig {
  const config: Partial<Record<Key, unknown>> = {};
  const profileSetting = SETTINGS.find((s) => s.key === "profile") as Setting;
  const profile = resolveSetting(profileSetting, flags, env) as ServeConfig["profile"];
  for (const s of SETTINGS) config[s.key] = resolveSetting(s, flags, env, profile);
  return config as unknown as ServeConfig; // every key of ServeConfig has its setting (config.test.ts)
}

/** One setting's value, for commands other than `serve` (the data directory, say). */
export function settingValue<K extends Key>(
  key: K,
  flag?: string,
  env: NodeJS.ProcessEnv = process.env,
): ServeConfig[K] {
  const setting = SETTINGS.find((s) => s.key === key);
  if (!setting) throw new Error(`no setting ${key}`);
  return resolveSetting(setting, flag === undefined ? {} : { [key]: flag }, env) as ServeConfig[K];
}

/** Retry i waits 1 s + 9 s × i, as DPS does (behaviors.md §4.5). */
export const webhookRetryDelays = (retries: number): number[] =>
  Array.from({ length: retries }, (_, i) => 1000 + 9000 * i);
