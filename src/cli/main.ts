// The `provisio` command.
import { Command } from "commander";
import { createLogger } from "../observability/logger.js";
import { DEFAULTS, parseCount, parsePort } from "../server/config.js";
import { startServer } from "../server.js";
import { VERSION } from "../version.js";

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

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`provisio: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
