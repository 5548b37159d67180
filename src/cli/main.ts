// The `provisio` command.
import { Command } from "commander";
import { createLogger } from "../observability/logger.js";
import { DEFAULTS, parseCount, parsePort, parseWhole } from "../server/config.js";
import { startServer } from "../server.js";
import { VERSION } from "../version.js";
import { registerCertCommands } from "./cert-generate.js";
import { registerCertificateCommands } from "./certificate-commands.js";
import { monitorEvents } from "./hub-monitor.js";

const env = process.env;

const program = new Command("provisio")
  .description("Self-hosted device provisioning service speaking the Azure IoT Hub DPS protocols")
  .version(VERSION);

program
  .command("serve")
  .description("Run the provisioning service: HTTPS, MQTT and AMQP listeners over TLS")
  .option("--data-dir <dir>", "data directory (env PROVISIO_DATA_DIR)", env.PROVISIO_DATA_DIR ?? DEFAULTS.dataDir)
  .option("--host <name>", "host name devices and clients use (env PROVISIO_HOST)", env.PROVISIO_HOST ?? DEFAULTS.host)
  .option("--bind <address>", "address the listeners bind (env PROVISIO_BIND)", env.PROVISIO_BIND ?? "0.0.0.0")
  .option(
    "--https-port <n>",
    "HTTPS port, 0 = any (env PROVISIO_HTTPS_PORT)",
    env.PROVISIO_HTTPS_PORT ?? String(DEFAULTS.httpsPort),
  )
  .option(
    "--mqtt-port <n>",
    "MQTT port, 0 = any (env PROVISIO_MQTT_PORT)",
    env.PROVISIO_MQTT_PORT ?? String(DEFAULTS.mqttPort),
  )
  .option(
    "--amqp-port <n>",
    "AMQP port, 0 = any (env PROVISIO_AMQP_PORT)",
    env.PROVISIO_AMQP_PORT ?? String(DEFAULTS.amqpPort),
  )
  .option("--hubs <n>", "number of built-in IoT hubs (env PROVISIO_HUBS)", env.PROVISIO_HUBS ?? String(DEFAULTS.hubs))
  .action(async (opts: Record<string, string>) => {
    const log = createLogger();
    const server = await startServer(
      {
        dataDir: opts.dataDir ?? DEFAULTS.dataDir,
        host: opts.host ?? DEFAULTS.host,
        bind: opts.bind ?? DEFAULTS.bind,
        hubs: parseCount(opts.hubs ?? "", "--hubs"),
        ...(env.PROVISIO_REGISTRATIONS_PER_MINUTE
          ? {
              registrationsPerMinute: parseWhole(
                env.PROVISIO_REGISTRATIONS_PER_MINUTE,
                "PROVISIO_REGISTRATIONS_PER_MINUTE",
                "registrations",
              ),
            }
          : {}),
        ...(env.PROVISIO_WEBHOOK_TIMEOUT_MS
          ? {
              webhookTimeoutMs: parseWhole(
                env.PROVISIO_WEBHOOK_TIMEOUT_MS,
                "PROVISIO_WEBHOOK_TIMEOUT_MS",
                "milliseconds",
              ),
            }
          : {}),
        ...(env.PROVISIO_WEBHOOK_RETRIES
          ? { webhookRetries: parseWhole(env.PROVISIO_WEBHOOK_RETRIES, "PROVISIO_WEBHOOK_RETRIES", "retries") }
          : {}),
        ...(env.PROVISIO_BUILTIN_HUB_CLIENT === "rest" ? { builtinHubClient: "rest" as const } : {}),
        ...(env.PROVISIO_REGISTER_WAIT_MS
          ? { registerWaitMs: parseWhole(env.PROVISIO_REGISTER_WAIT_MS, "PROVISIO_REGISTER_WAIT_MS", "milliseconds") }
          : {}),
        httpsPort: parsePort(opts.httpsPort ?? "", "--https-port"),
        mqttPort: parsePort(opts.mqttPort ?? "", "--mqtt-port"),
        amqpPort: parsePort(opts.amqpPort ?? "", "--amqp-port"),
      },
      log,
    );
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, "stopping: finishing in-flight work");
      await server.close();
      log.info("stopped");
      process.exit(0);
    };
    process.on("SIGTERM", () => void stop("SIGTERM"));
    process.on("SIGINT", () => void stop("SIGINT"));
  });

const hub = program.command("hub").description("Work with the built-in IoT hubs");
hub
  .command("monitor-events")
  .description("Stream device telemetry of a built-in hub as JSON lines (like az iot hub monitor-events)")
  .option(
    "--data-dir <dir>",
    "data directory of the running server (env PROVISIO_DATA_DIR)",
    env.PROVISIO_DATA_DIR ?? DEFAULTS.dataDir,
  )
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
      dataDir: str("dataDir") ?? DEFAULTS.dataDir,
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

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`provisio: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
