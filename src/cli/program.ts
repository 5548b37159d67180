// The `provisio` command's verbs, as one tree: main.ts runs it; tests walk it (every verb has
// examples) and completion.ts turns it into a shell completion script.

import { resolve } from "node:path";
import { Command } from "commander";
import { createLogger, resolveLogFormat } from "../observability/logger.js";
import { loadServeConfig, parsePort, SETTINGS, settingValue } from "../server/config.js";
import { startServer } from "../server.js";
import { VERSION } from "../version.js";
import { formatBanner } from "./banner.js";
import { registerCertCommands } from "./cert-generate.js";
import { registerCertificateCommands } from "./certificate-commands.js";
import { registerCompletionCommand } from "./completion.js";
import { registerDatabaseCommands } from "./database-copy.js";
import { registerDeviceCommands } from "./device-commands.js";
import { registerEnrollmentCommands } from "./enrollment-commands.js";
import { examples } from "./examples.js";
import { registerFleetCommands } from "./fleet-commands.js";
import { monitorEvents } from "./hub-monitor.js";
import { registerInstanceCommands } from "./instance-commands.js";
import { registerLinkedHubCommands } from "./linked-hub-commands.js";
import { registerPolicyCommands } from "./policy-commands.js";
import { registerRegistrationCommands } from "./registration-commands.js";
import { registerStatusCommand } from "./status-command.js";
import { registerTlsCommands } from "./tls-probe.js";

export function buildProgram(): Command {
  const program = new Command("provisio")
    .description("Self-hosted device provisioning service speaking the Azure IoT Hub DPS protocols")
    .version(VERSION);

  const serve = program
    .command("serve")
    .description("Run the provisioning service: HTTPS, MQTT and AMQP listeners over TLS")
    .addHelpText("after", `\nEvery setting (flags win over the environment):\n${settingsHelp()}`);
  for (const s of SETTINGS) {
    const profiled = s.azure === undefined ? "" : `; with --profile azure ${s.azure}`;
    const help = `${s.doc} (env ${s.env}, default ${s.default || "none"}${profiled})`;
    if (s.flag && s.repeatable) {
      const separator = s.repeatable;
      serve.option(s.flag, help, (value: string, earlier?: string) =>
        earlier ? `${earlier}${separator}${value}` : value,
      );
    } else if (s.flag) serve.option(s.flag, help);
  }
  serve.action(async (opts: Record<string, string>) => {
    const config = loadServeConfig(opts);
    const format = resolveLogFormat(config.logFormat, process.stdout.isTTY === true);
    const log = createLogger(config.logLevel, format);
    const server = await startServer(config, log);
    // For a person (pretty logs): what is listening where, and what to type next.
    if (format === "pretty") {
      const banner = formatBanner({
        version: VERSION,
        dataDirArg: opts.dataDir ?? process.env.PROVISIO_DATA_DIR,
        dataDir: resolve(config.dataDir),
        info: server.info,
        metricsBind: config.metricsBind,
        showSecrets: config.showSecrets,
      });
      process.stdout.write(`\n${banner}\n`);
    }
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, "stopping: finishing in-flight work");
      await server.close();
      log.info("stopped");
      process.exit(0);
    };
    // SIGHUP: the server certificates are read again (a renewed --tls-cert), without dropping anyone.
    process.on("SIGHUP", () => {
      server.reloadTls().then(
        () => log.info("server certificates reloaded"),
        (err: unknown) =>
          log.error(
            { reason: err instanceof Error ? err.message : String(err) },
            "server certificates not reloaded: still serving the previous ones",
          ),
      );
    });
    process.on("SIGTERM", () => void stop("SIGTERM"));
    process.on("SIGINT", () => void stop("SIGINT"));
  });

  const hub = program.command("hub").description("Work with the built-in IoT hubs");
  hub
    .command("monitor-events")
    .description("Stream device telemetry of a built-in hub as JSON lines (like az iot hub monitor-events)")
    .option("--data-dir <dir>", "data directory of the running server (env PROVISIO_DATA_DIR)")
    .option("--hub <name>", "hub name or host name (default: the first built-in hub)")
    .option("--device-id <id>", "only this device's messages")
    .option("--recent", "print the messages the hub kept before streaming")
    .option("--connection-string <cs>", "a hub connection string instead of the data dir's")
    .option("--ca-file <file>", "the CA that signed the server certificate (with --connection-string)")
    .option("--address <host>", "address to dial (default: provisio.json's host)")
    .option("--port <n>", "HTTPS port to dial (default: provisio.json's)")
    .action(async (opts: Record<string, string | boolean>) => {
      const str = (k: string) => (typeof opts[k] === "string" ? (opts[k] as string) : undefined);
      const port = str("port");
      await monitorEvents({
        dataDir: settingValue("dataDir", str("dataDir")),
        ...(str("hub") ? { hub: str("hub") } : {}),
        ...(str("deviceId") ? { deviceId: str("deviceId") } : {}),
        ...(str("connectionString") ? { connectionString: str("connectionString") } : {}),
        ...(str("caFile") ? { caFile: str("caFile") } : {}),
        ...(str("address") ? { address: str("address") } : {}),
        ...(port ? { port: parsePort(port, "--port") } : {}),
        recent: opts.recent === true,
      });
    });

  // CA certificates (management.md §7.4) and test certificates.
  registerCertificateCommands(program);
  registerCertCommands(program);
  // az iot dps's data-plane verbs (management.md §7.5): enrollments, groups, registrations.
  registerEnrollmentCommands(program, "individual");
  registerEnrollmentCommands(program, "group");
  registerRegistrationCommands(program);
  // Its management verbs (§7.1-7.3): instances, linked hubs, policies, connection strings.
  registerInstanceCommands(program);
  registerLinkedHubCommands(program);
  registerPolicyCommands(program);
  // Declarative enrollments: apply and export.
  registerFleetCommands(program);
  // Devices: one registration, or a simulated fleet.
  registerDeviceCommands(program);
  // TLS troubleshooting.
  registerTlsCommands(program);
  registerStatusCommand(program);
  // Moving a data directory to PostgreSQL.
  registerDatabaseCommands(program);
  // Shell completion for all of the above.
  registerCompletionCommand(program);
  // `--help` of every verb ends with examples (examples.ts).
  addExamples(program);
  return program;
}

function settingsHelp(): string {
  return SETTINGS.map((s) => `  ${s.env.padEnd(34)} ${s.flag ? `${s.flag.split(" ")[0]}: ` : ""}${s.doc}`).join("\n");
}

/** Every command with examples gets them after its help, keyed by its path (`enrollment create`). */
function addExamples(cmd: Command, path: string[] = []): void {
  for (const sub of cmd.commands) {
    const subPath = [...path, sub.name()];
    const text = examples(subPath.join(" "));
    if (text) sub.addHelpText("after", text);
    addExamples(sub, subPath);
  }
}
