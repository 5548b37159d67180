// What every command that talks to a running Provisio shares: where it is and how to sign
// (the data directory's provisio.json, or a connection string and the CA), and how it prints.
import type { Command } from "commander";
import { parsePort, settingValue } from "../server/config.js";
import { DpsClient, type DpsClientOptions } from "./dps-client.js";

export type Opts = Record<string, string | boolean | undefined>;

export const str = (o: Opts, k: string): string | undefined =>
  typeof o[k] === "string" ? (o[k] as string) : undefined;

export const print = (value: unknown): void => {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
};

/** The flags that pick the server and the credentials; `rights`: what the connection string needs. */
export function serverOptions(cmd: Command, rights: string): Command {
  return cmd
    .option("--data-dir <dir>", "data directory of the running server (env PROVISIO_DATA_DIR)")
    .option("--connection-string <cs>", `a service connection string with ${rights}, instead of the data dir's`)
    .option("--ca-file <file>", "the CA that signed the server certificate (with --connection-string)")
    .option("--address <host>", "address to dial (default: provisio.json's host or the connection string's HostName)")
    .option("--port <n>", "HTTPS port to dial (default: provisio.json's, or 443 with --connection-string)");
}

export function clientOf(o: Opts): DpsClient {
  const port = str(o, "port");
  const options: DpsClientOptions = {
    dataDir: settingValue("dataDir", str(o, "dataDir")),
    ...(str(o, "connectionString") ? { connectionString: str(o, "connectionString") } : {}),
    ...(str(o, "caFile") ? { caFile: str(o, "caFile") } : {}),
    ...(str(o, "address") ? { address: str(o, "address") } : {}),
    ...(port !== undefined ? { port: parsePort(port, "--port") } : {}),
  };
  return DpsClient.from(options);
}
