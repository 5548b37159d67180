// `provisio instance …` (az iot dps create|list|show|update|delete, management.md §7.1) and
// `provisio connection-string show` (§7.3): provisioning service instances through the
// management API. Creating, listing and deleting instances takes a policy of the primary one.
import { type Command, Option } from "commander";
import { parseFlagBoolean } from "./enrollment-options.js";
import { INSTANCE_API, type InstanceResource, listKeys, readInstance } from "./instance-resource.js";
import { DpsSession, many, type Opts, print, required, serverOptions, str } from "./server-options.js";

const seg = encodeURIComponent;

/** `--set a.b[0].c=value`: the value parsed as JSON where it is JSON, else taken as text. */
export function applySet(target: Record<string, unknown>, assignment: string): void {
  const eq = assignment.indexOf("=");
  if (eq <= 0) throw new Error(`--set takes path=value, not '${assignment}'.`);
  const path = assignment.slice(0, eq).trim();
  const text = assignment.slice(eq + 1);
  let value: unknown = text;
  try {
    value = JSON.parse(text);
  } catch {
    // plain text
  }
  const keys = path.split(/\.|\[(\d+)\]/).filter((k) => k !== undefined && k !== "");
  let node: Record<string, unknown> | unknown[] = target;
  keys.forEach((key, i) => {
    const last = i === keys.length - 1;
    const index = /^\d+$/.test(key) ? Number(key) : key;
    const container = node as Record<string | number, unknown>;
    if (last) {
      container[index] = value;
      return;
    }
    const next = container[index];
    if (typeof next !== "object" || next === null) {
      throw new Error(`--set ${path}: '${keys.slice(0, i + 1).join(".")}' is not an object or list here.`);
    }
    node = next as Record<string, unknown>;
  });
}

const READ_ONLY = ["state", "provisioningState", "idScope", "deviceProvisioningHostName", "authorizationPolicies"];

/** What a PUT needs of a resource read with GET: properties without the read-only ones. */
function writable(resource: InstanceResource): Record<string, unknown> {
  return Object.fromEntries(Object.entries(resource.properties).filter(([k]) => !READ_ONLY.includes(k)));
}

export function registerInstanceCommands(program: Command): void {
  const group = program
    .command("instance")
    .description("Provisioning service instances (like az iot dps create|list|show|update|delete)");
  const common = (cmd: Command) => serverOptions(cmd, "ServiceConfig", { shortLogin: false });

  common(group.command("create").description("Create a provisioning service instance"))
    .option("-n, --name <name>", "the instance name: 3-50 letters, digits or '-'")
    .option("-l, --location <location>", "a region name, used by geolatency allocation", "local")
    .option("--sku <sku>", "S1 (the only one)", "S1")
    .option("--unit <n>", "scale units: a server setting (--units), checked to match")
    .option("--edr, --enforce-data-residency [bool]", "refuse cross-region disaster recovery (fixed at creation)")
    .action(async (o: Opts) => {
      const session = new DpsSession(o);
      const name = required(o, "name", "--name (-n)");
      if ((str(o, "sku") ?? "S1").toUpperCase() !== "S1") throw new Error("--sku: S1 is the only SKU.");
      const path = `/provisioningServices/${seg(name)}?${INSTANCE_API}`;
      const existing = await session.client.send("GET", path);
      if (existing.status === 200) throw new Error(`A provisioning service named '${name}' already exists.`);
      const unit = str(o, "unit");
      if (unit !== undefined) {
        const primary = (await session.client.call(
          "GET",
          `${await session.instancePath()}?${INSTANCE_API}`,
        )) as InstanceResource;
        if (Number(unit) !== primary.sku.capacity) {
          throw new Error(
            `--unit ${unit}: scale units are set for the whole server (provisio serve --units, now ${primary.sku.capacity}).`,
          );
        }
      }
      const edr = parseFlagBoolean(o.enforceDataResidency as string | boolean | undefined);
      const body = {
        location: str(o, "location"),
        sku: { name: "S1" },
        properties: { ...(edr !== undefined ? { enableDataResidency: edr } : {}) },
      };
      print(await session.client.call("PUT", path, { body }), o);
    });

  common(group.command("list").description("List the provisioning service instances")).action(async (o: Opts) => {
    const reply = (await new DpsSession(o).client.call("GET", `/provisioningServices?${INSTANCE_API}`)) as {
      value: unknown[];
    };
    print(reply.value, o);
  });

  common(group.command("show").description("Show a provisioning service instance"))
    .option("-n, --name <name>", "the instance (default: the connection string's)")
    .action(async (o: Opts) => {
      const session = new DpsSession({ ...o, dpsName: str(o, "name") });
      print((await readInstance(session)).resource, o);
    });

  common(group.command("update").description("Change a provisioning service instance (read, change, write)"))
    .option("-n, --name <name>", "the instance (default: the connection string's)")
    .option("--set <path=value>", "set a property, e.g. properties.allocationPolicy=GeoLatency (repeatable)", many)
    .addOption(
      new Option("--allocation-policy <policy>", "the default allocation policy").choices([
        "hashed",
        "geolatency",
        "static",
      ]),
    )
    .addOption(new Option("--public-network-access <access>", "Enabled or Disabled").choices(["Enabled", "Disabled"]))
    .option("-e, --etag <etag>", "update only if unchanged since this etag")
    .action(async (o: Opts) => {
      const session = new DpsSession({ ...o, dpsName: str(o, "name") });
      const { path, resource } = await readInstance(session);
      const sets = (o.set as string[] | undefined) ?? [];
      const policy = str(o, "allocationPolicy");
      const access = str(o, "publicNetworkAccess");
      if (sets.length === 0 && !policy && !access) {
        throw new Error("Nothing to change: give --set, --allocation-policy or --public-network-access.");
      }
      const editable: Record<string, unknown> = { properties: writable(resource) };
      for (const s of sets) applySet(editable, s);
      const properties = editable.properties as Record<string, unknown>;
      if (policy) properties.allocationPolicy = policy;
      if (access) properties.publicNetworkAccess = access;
      const etag = str(o, "etag") ?? resource.etag;
      print(
        await session.client.call("PUT", `${path}?${INSTANCE_API}`, {
          body: { properties },
          headers: { "if-match": etag },
        }),
        o,
      );
    });

  common(group.command("delete").description("Delete a provisioning service instance and everything in it"))
    .option("-n, --name <name>", "the instance")
    .action(async (o: Opts) => {
      const name = required(o, "name", "--name (-n)");
      await new DpsSession(o).client.call("DELETE", `/provisioningServices/${seg(name)}?${INSTANCE_API}`);
    });

  const cs = program
    .command("connection-string")
    .description("Service connection strings (like az iot dps connection-string)");
  common(cs.command("show").description("Show the service connection string of an access policy"))
    .option("-n, --dps-name <name>", "the instance (default: the connection string's)")
    .option("--pn, --policy-name <name>", "the policy (default: provisioningserviceowner, else the first)")
    .addOption(
      new Option("--kt, --key-type <type>", "primary or secondary")
        .choices(["primary", "secondary"])
        .default("primary"),
    )
    .option("--all, --show-all", "every policy's")
    .action(async (o: Opts) => {
      const session = new DpsSession(o);
      const { path, resource } = await readInstance(session);
      const policies = await listKeys(session, path);
      const host = resource.properties.serviceOperationsHostName;
      const keyOf = (p: { primaryKey: string; secondaryKey: string }) =>
        str(o, "keyType") === "secondary" ? p.secondaryKey : p.primaryKey;
      if (o.showAll === true) {
        print(
          {
            name: resource.name,
            connectionString: policies.map((p) => DpsSession.connectionString(host, p.keyName, keyOf(p))),
          },
          o,
        );
        return;
      }
      const wanted = str(o, "policyName");
      const policy = wanted
        ? policies.find((p) => p.keyName.toLowerCase() === wanted.toLowerCase())
        : (policies.find((p) => p.keyName === "provisioningserviceowner") ?? policies[0]);
      if (!policy) {
        throw new Error(
          wanted ? `No access policy '${wanted}' ('provisio policy list' shows them).` : "No access policies.",
        );
      }
      print(
        { name: resource.name, connectionString: DpsSession.connectionString(host, policy.keyName, keyOf(policy)) },
        o,
      );
    });
}
