// `provisio linked-hub …`: az iot dps linked-hub (management.md §7.2) as read-modify-write of the
// instance resource. Masked hub connection strings go back as they came: the server keeps the
// stored secret.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { settingValue } from "../server/config.js";
import type { ServeInfo } from "../server.js";
import { parseFlagBoolean } from "./enrollment-options.js";
import { type LinkedHubWire, putProperties, readInstance } from "./instance-resource.js";
import { DpsSession, hostOf, managementOptions, type Opts, print, required, str } from "./server-options.js";

const common = managementOptions;

/** A hub by host name or by its first label, case-insensitively (az's --linked-hub). */
function findHub(hubs: LinkedHubWire[], name: string): LinkedHubWire {
  const n = name.toLowerCase();
  const hub = hubs.find((h) => h.name.toLowerCase() === n || h.name.toLowerCase().split(".")[0] === n);
  if (!hub) {
    throw new Error(`No linked hub '${name}'; linked: ${hubs.map((h) => h.name).join(", ") || "none"}.`);
  }
  return hub;
}

function weightOf(o: Opts): number | undefined {
  const w = str(o, "allocationWeight");
  if (w === undefined) return undefined;
  const n = Number(w);
  if (!Number.isInteger(n) || n < 1 || n > 1000)
    throw new Error("--allocation-weight must be a whole number from 1 to 1000.");
  return n;
}

/** `--hub-name`: a built-in hub of the local Provisio, its connection string from provisio.json. */
function builtinHubConnectionString(o: Opts, hubName: string): string {
  const file = join(settingValue("dataDir", str(o, "dataDir")), "provisio.json");
  let info: ServeInfo;
  try {
    info = JSON.parse(readFileSync(file, "utf8")) as ServeInfo;
  } catch {
    throw new Error(`--hub-name looks the hub up in ${file}, which cannot be read; pass --connection-string instead.`);
  }
  const n = hubName.toLowerCase();
  const hub = info.hubs.find((h) => h.name.toLowerCase() === n || h.hostName.toLowerCase() === n);
  if (!hub) {
    throw new Error(
      `'${hubName}' is not a built-in hub (${info.hubs.map((h) => h.name).join(", ")}); pass its --connection-string.`,
    );
  }
  return hub.connectionString;
}

export function registerLinkedHubCommands(program: Command): void {
  const group = program
    .command("linked-hub")
    .description("IoT hubs linked to a provisioning service (like az iot dps linked-hub)");

  common(group.command("create").description("Link an IoT hub"), { connectionStringAlias: false })
    .option(
      "--cs, --connection-string <cs>",
      "the hub's connection string (a policy with RegistryWrite and ServiceConnect)",
    )
    .option("--hn, --hub-name <name>", "a built-in hub of the local Provisio, instead of --connection-string")
    .option("--location <location>", "the hub's region, for geolatency allocation", "local")
    .option("--allocation-weight <n>", "1-1000 (default 1)")
    .option("--apply-allocation-policy [bool]", "take part in allocation (default true)")
    .action(async (o: Opts) => {
      const session = new DpsSession(o);
      const hubName = str(o, "hubName");
      const cs = str(o, "connectionString") ?? (hubName ? builtinHubConnectionString(o, hubName) : undefined);
      if (!cs) throw new Error("Give the hub's --connection-string (or --hub-name for a built-in hub).");
      const host = hostOf(cs, "--connection-string");
      const { path, resource } = await readInstance(session);
      if (resource.properties.iotHubs.some((h) => h.name.toLowerCase() === host.toLowerCase())) {
        throw new Error(`Hub '${host}' is already linked; change it with 'provisio linked-hub update'.`);
      }
      const apply = parseFlagBoolean(o.applyAllocationPolicy as string | boolean | undefined);
      const hub = {
        connectionString: cs,
        location: str(o, "location") ?? "local",
        allocationWeight: weightOf(o) ?? 1,
        applyAllocationPolicy: apply ?? true,
      };
      const updated = await putProperties(session, path, resource.etag, {
        iotHubs: [...resource.properties.iotHubs, hub],
      });
      print(updated.properties.iotHubs, o);
    });

  common(group.command("list").description("List the linked hubs")).action(async (o: Opts) =>
    print((await readInstance(new DpsSession(o))).resource.properties.iotHubs, o),
  );

  common(group.command("show").description("Show a linked hub"))
    .option("--lh, --linked-hub <name>", "the hub's host name or name")
    .action(async (o: Opts) => {
      const { resource } = await readInstance(new DpsSession(o));
      print(findHub(resource.properties.iotHubs, required(o, "linkedHub", "--linked-hub")), o);
    });

  common(group.command("update").description("Change a linked hub's weight, allocation switch or connection string"), {
    connectionStringAlias: false,
  })
    .option("--lh, --linked-hub <name>", "the hub's host name or name")
    .option("--allocation-weight <n>", "1-1000")
    .option("--apply-allocation-policy [bool]", "take part in allocation")
    .option("--cs, --connection-string <cs>", "a new connection string for the same hub (key rotation)")
    .option("--location <location>", "the hub's region")
    .action(async (o: Opts) => {
      const session = new DpsSession(o);
      const { path, resource } = await readInstance(session);
      const hub = findHub(resource.properties.iotHubs, required(o, "linkedHub", "--linked-hub"));
      const weight = weightOf(o);
      const apply = parseFlagBoolean(o.applyAllocationPolicy as string | boolean | undefined);
      const cs = str(o, "connectionString");
      const location = str(o, "location");
      if (weight === undefined && apply === undefined && !cs && !location) {
        throw new Error(
          "Nothing to change: give --allocation-weight, --apply-allocation-policy, --connection-string or --location.",
        );
      }
      if (cs && hostOf(cs, "--connection-string").toLowerCase() !== hub.name.toLowerCase()) {
        throw new Error(`--connection-string is for ${hostOf(cs, "--connection-string")}, not ${hub.name}.`);
      }
      const hubs = resource.properties.iotHubs.map((h) =>
        h === hub
          ? {
              ...h,
              ...(weight !== undefined ? { allocationWeight: weight } : {}),
              ...(apply !== undefined ? { applyAllocationPolicy: apply } : {}),
              ...(cs ? { connectionString: cs } : {}),
              ...(location ? { location } : {}),
            }
          : h,
      );
      print((await putProperties(session, path, resource.etag, { iotHubs: hubs })).properties.iotHubs, o);
    });

  common(group.command("delete").description("Unlink a hub"))
    .option("--lh, --linked-hub <name>", "the hub's host name or name")
    .action(async (o: Opts) => {
      const session = new DpsSession(o);
      const { path, resource } = await readInstance(session);
      const hub = findHub(resource.properties.iotHubs, required(o, "linkedHub", "--linked-hub"));
      const hubs = resource.properties.iotHubs.filter((h) => h !== hub);
      print((await putProperties(session, path, resource.etag, { iotHubs: hubs })).properties.iotHubs, o);
    });
}
