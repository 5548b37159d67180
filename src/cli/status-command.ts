// `provisio status`: what `serve` showed at start, read from a running service, with live counts;
// or a clear "none is running for this data directory" (exit code 3, as service managers use).
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { parseConnectionString } from "../domain/connection-string.js";
import { settingValue } from "../server/config.js";
import type { ServeInfo } from "../service.js";
import { VERSION } from "../version.js";
import { formatBanner } from "./banner.js";
import { DpsClient } from "./dps-client.js";

/** Nothing answers for the data directory: exit code 3 ("not running"). */
export class NotRunning extends Error {
  readonly exitCode = 3;
}

interface Statistics {
  individualEnrollments: number;
  enrollmentGroups: number;
  registrations: number;
}

/** Devices connected to each built-in hub now, counted by the hubs' own twin query. */
async function connectedDevices(client: DpsClient, info: ServeInfo): Promise<number | undefined> {
  let n = 0;
  for (const hub of info.hubs) {
    const cs = parseConnectionString(hub.connectionString);
    if (!cs) return undefined;
    const reply = await client.as(cs).send("POST", "/devices/query?api-version=2021-04-12", {
      body: { query: "SELECT COUNT() AS connected FROM devices WHERE connectionState = 'Connected'" },
    });
    const row = Array.isArray(reply.body) ? (reply.body[0] as { connected?: unknown } | undefined) : undefined;
    if (reply.status !== 200 || typeof row?.connected !== "number") return undefined;
    n += row.connected;
  }
  return n;
}

export async function status(o: { dataDir?: string; showSecrets?: boolean; output?: string }): Promise<string> {
  const dataDirArg = o.dataDir ?? process.env.PROVISIO_DATA_DIR;
  const dataDir = resolve(settingValue("dataDir", o.dataDir));
  const start = `npx provisio serve${dataDirArg ? ` --data-dir ${dataDirArg}` : ""}`;
  let info: ServeInfo;
  try {
    info = JSON.parse(readFileSync(join(dataDir, "provisio.json"), "utf8")) as ServeInfo;
  } catch {
    throw new NotRunning(`No Provisio has served from ${dataDir} (it has no provisio.json). Start one with: ${start}`);
  }
  const client = DpsClient.from({ dataDir });
  let who: { service: { idScope: string } };
  let stats: Statistics;
  try {
    who = (await client.call("GET", "/caller?api-version=2021-10-01")) as typeof who;
    stats = (await client.call("GET", "/statistics?api-version=2021-10-01")) as Statistics;
  } catch (err) {
    const msg = (err as Error).message;
    if (/ECONNREFUSED|Cannot reach/.test(msg)) {
      throw new NotRunning(
        `No Provisio is running for ${dataDir}: nothing answers at ${info.host}:${info.ports.https}, where its provisio.json says it served. Start it with: ${start}`,
      );
    }
    throw err;
  }
  if (who.service.idScope !== info.idScope) {
    throw new NotRunning(
      `${info.host}:${info.ports.https} is answered by another Provisio (ID scope ${who.service.idScope}), not the one of ${dataDir} (${info.idScope}).`,
    );
  }
  const counts = {
    enrollments: stats.individualEnrollments,
    groups: stats.enrollmentGroups,
    registrations: stats.registrations,
    connected: await connectedDevices(client, info).catch(() => undefined),
  };
  if (o.output === "json") {
    const shown = o.showSecrets
      ? info
      : {
          ...info,
          serviceConnectionString: undefined,
          hubs: info.hubs.map(({ connectionString: _, eventHubConnectionString: __, ...h }) => h),
        };
    return `${JSON.stringify({ running: true, dataDir, ...shown, counts }, null, 2)}\n`;
  }
  return `${formatBanner(
    { version: VERSION, dataDirArg, dataDir, info, showSecrets: o.showSecrets === true, counts },
    `Provisio is running (data: ${dataDir})`,
  )}\n`;
}

export function registerStatusCommand(program: Command): void {
  program
    .command("status")
    .description("Show a running Provisio's endpoints and live counts, or say that none runs for the data directory")
    .option("--data-dir <dir>", "the data directory of the service (env PROVISIO_DATA_DIR, default ./provisio-data)")
    .option("--show-secrets", "show the service and hub connection strings")
    .option("-o, --output <format>", "text (default) or json")
    .action(async (o: { dataDir?: string; showSecrets?: boolean; output?: string }) => {
      process.stdout.write(await status(o));
    });
}
