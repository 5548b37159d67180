// What every command that talks to a running Provisio (or any DPS) shares: where it is and how to
// sign — the data directory's provisio.json, or `--login <connection string>` as az takes it —
// which instance (`--dps-name`), and how results print (`--output json|table|yaml`).
import { type Command, Option } from "commander";
import { formatConnectionString, parseConnectionString } from "../domain/connection-string.js";
import { grants, parseRights, type Right } from "../domain/instance.js";
import { parsePort, settingValue } from "../server/config.js";
import { DpsClient, type DpsClientOptions, DpsError } from "./dps-client.js";
import { outputFormat, render } from "./output.js";

export type Opts = Record<string, string | boolean | string[] | undefined>;

export const str = (o: Opts, k: string): string | undefined =>
  typeof o[k] === "string" ? (o[k] as string) : undefined;

/** Print a result in the format `--output` asks for (JSON when the command has no such flag). */
export const print = (value: unknown, o: Opts = {}): void => {
  process.stdout.write(render(value, outputFormat(str(o, "output"))));
};

export function required(o: Opts, key: string, flag: string): string {
  const v = str(o, key);
  if (!v) throw new Error(`${flag} is required.`);
  return v;
}

/** The rights the running command needs, named when the server refuses with 401. */
let neededRights = "";

export interface ServerFlags {
  /** `-l` for --login (az's data-plane commands); off where -l is --location. */
  shortLogin?: boolean;
  /** `--connection-string` as another name of --login; off where it names a hub's. */
  connectionStringAlias?: boolean;
}

/** The flags that pick the server and the credentials; `rights`: what the policy needs. */
export function serverOptions(cmd: Command, rights: string, flags: ServerFlags = {}): Command {
  cmd
    .option(
      flags.shortLogin === false ? "--login <cs>" : "-l, --login <cs>",
      `a service connection string with ${rights} (default: the data dir's provisio.json)`,
    )
    .option("--data-dir <dir>", "data directory of a local Provisio (env PROVISIO_DATA_DIR)")
    .option("--ca-file <file>", "the CA that signed the server certificate (default with --login: the system's)")
    .option("--address <host>", "address to dial (default: provisio.json's host or the connection string's HostName)")
    .option("--port <n>", "HTTPS port to dial (default: provisio.json's, or the HostName's port, or 443)")
    .addOption(new Option("-o, --output <format>", "json, table or yaml").choices(["json", "table", "yaml"]));
  const alias = flags.connectionStringAlias !== false;
  if (alias) cmd.addOption(new Option("--connection-string <cs>", "same as --login").hideHelp());
  return cmd.hook("preAction", (_hooked, action) => {
    neededRights = rights;
    const cs = action.getOptionValue("connectionString");
    if (alias && typeof cs === "string" && action.getOptionValue("login") === undefined) {
      action.setOptionValue("login", cs);
    }
  });
}

/** Management verbs: a ServiceConfig policy, `--dps-name`, and no `-l` (az's --location there). */
export const managementOptions = (cmd: Command, extra: Pick<ServerFlags, "connectionStringAlias"> = {}): Command =>
  serverOptions(cmd, "ServiceConfig", { shortLogin: false, ...extra }).option(
    "--dps-name <name>",
    "the instance (default: the connection string's)",
  );

function clientOptions(o: Opts): DpsClientOptions {
  const port = str(o, "port");
  const login = str(o, "login");
  return {
    dataDir: settingValue("dataDir", str(o, "dataDir")),
    ...(login ? { connectionString: login } : {}),
    ...(str(o, "caFile") ? { caFile: str(o, "caFile") } : {}),
    ...(str(o, "address") ? { address: str(o, "address") } : {}),
    ...(port !== undefined ? { port: parsePort(port, "--port") } : {}),
  };
}

export function clientOf(o: Opts): DpsClient {
  return DpsClient.from(clientOptions(o));
}

const seg = encodeURIComponent;

interface InstanceResource {
  name: string;
  properties: { serviceOperationsHostName: string };
}

interface PolicyWire {
  keyName: string;
  primaryKey: string;
  secondaryKey: string;
  rights: string;
}

/**
 * The credentials a command signs with, for the instance it works on. The connection string's
 * own instance by default; `--dps-name` another one, whose policy (one granting `right`) the
 * management API's listkeys gives — az's "auto-discover a policy with the needed rights".
 */
export class DpsSession {
  readonly client: DpsClient;
  #name: string | undefined;

  constructor(readonly opts: Opts) {
    this.client = clientOf(opts);
  }

  get hostName(): string {
    return this.client.target.credentials.hostName;
  }

  /**
   * The instance the command manages: `--dps-name`, or the one the connection string belongs to
   * (looked up by host name where the policy may list instances, else the host name's first label,
   * `provisio` for the primary).
   */
  async instanceName(): Promise<string> {
    const named = str(this.opts, "dpsName");
    if (named) return named;
    if (this.#name) return this.#name;
    const reply = await this.client.send("GET", "/provisioningServices?api-version=2022-02-05");
    const host = this.hostName.toLowerCase();
    const all = (reply.body as { value?: InstanceResource[] } | undefined)?.value;
    const mine =
      reply.status === 200 && Array.isArray(all)
        ? all.find((i) => i.properties?.serviceOperationsHostName?.toLowerCase() === host)
        : undefined;
    const label = host.split(".")[0] ?? host;
    this.#name = mine?.name ?? (host.includes(".") && !/^\d/.test(host) ? label : "provisio");
    return this.#name;
  }

  /** Where the instance's management API answers. */
  async instancePath(): Promise<string> {
    return `/provisioningServices/${seg(await this.instanceName())}`;
  }

  /** A client signing with a policy of the instance `--dps-name` names that grants `right`. */
  async dataPlane(right: Right): Promise<DpsClient> {
    const named = str(this.opts, "dpsName");
    if (!named) return this.client;
    const resource = (await this.client.call(
      "GET",
      `/provisioningServices/${seg(named)}?api-version=2022-02-05`,
    )) as InstanceResource;
    const hostName = resource.properties.serviceOperationsHostName;
    if (hostName.toLowerCase() === this.hostName.toLowerCase()) return this.client;
    const listed = (await this.client.call(
      "POST",
      `/provisioningServices/${seg(named)}/listkeys?api-version=2022-02-05`,
    )) as { value: PolicyWire[] };
    const keys = listed.value;
    const policy = keys.find((p) => grants(parseRights(p.rights) ?? [], right));
    if (!policy)
      throw new Error(`No access policy of '${named}' grants ${right}; add one with 'provisio policy create'.`);
    return this.client.as({ hostName, keyName: policy.keyName, key: policy.primaryKey });
  }

  /** The connection string of a policy of this session's instance, as az prints it. */
  static connectionString(hostName: string, keyName: string, key: string): string {
    return formatConnectionString({ hostName, keyName, key });
  }
}

/** The server's refusal, with what to do about it where the status says. */
export function explain(err: unknown): string {
  if (!(err instanceof DpsError)) return err instanceof Error ? err.message : String(err);
  const code = err.errorCode === undefined ? "" : ` (${err.errorCode})`;
  const head = `${err.message}${code}`;
  if (err.status === 401) {
    const rights = neededRights ? `: this command needs ${neededRights}` : "";
    return `${head}\nThe credentials were refused or lack a right${rights}. Use a policy that has it ('provisio policy list' shows them) with --login, or the data dir's owner policy.`;
  }
  if (err.status === 412) {
    return `${head}\nThe object changed since its etag was read: run the matching 'show' again and pass its current --etag (or leave --etag out to overwrite).`;
  }
  if (err.status === 404) return `${head}\nCheck the id (the 'list' verb shows what exists) and --dps-name.`;
  return head;
}

/** A value parsed as JSON for flags such as --initial-twin-tags. */
export function jsonFlag(text: string, flag: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${flag} must be JSON: ${(err as Error).message}`);
  }
}

/** Values of a repeatable flag. */
export const many = (value: string, earlier: string[] | undefined): string[] => [...(earlier ?? []), value];

/** A connection string's HostName, checked. */
export function hostOf(cs: string, flag: string): string {
  const parsed = parseConnectionString(cs);
  if (!parsed) throw new Error(`${flag} is not HostName=...;SharedAccessKeyName=...;SharedAccessKey=...`);
  return parsed.hostName;
}
