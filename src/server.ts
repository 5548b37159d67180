// `provisio serve`: the service (service.ts) behind its listeners — one TLS port per protocol
// (design.md, "Running it") — and `DIR/provisio.json` once every listener accepts connections.
import { once } from "node:events";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import type { AddressInfo, Server as NetServer, Socket } from "node:net";
import { join } from "node:path";
import type { Server as TlsServer } from "node:tls";
import { serveHubConnection } from "./builtin-hub/amqp-hub-connection.js";
import { isHubLinkAddress } from "./builtin-hub/amqp-hub-links.js";
import type { Logger } from "./observability/logger.js";
import { listenerTls } from "./security/listener-tls.js";
import type { ServeConfig } from "./server/config.js";
import { defaultMaxConnections, limitConnections, openFilesLimit } from "./server/connection-limits.js";
import { createHttpsListener } from "./server/https-listener.js";
import { createMetricsListener } from "./server/metrics-listener.js";
import { portOwner } from "./server/port-owner.js";
import { buildService, type ServeInfo } from "./service.js";
import { createAmqpTlsServer } from "./transports/amqp/amqp-listener.js";
import { createAmqpWebSocketHandler } from "./transports/amqp/amqp-websocket.js";
import type { AmqpServe, AmqpTakeover } from "./transports/amqp/dps-connection.js";
import { DEFAULT_LIMITS } from "./transports/mqtt/mqtt-connection.js";
import { createMqttTlsServer } from "./transports/mqtt/mqtt-listener.js";
import { createMqttWebSocketHandler } from "./transports/mqtt/mqtt-websocket.js";
import { serveWebSocketUpgrades } from "./transports/websocket-upgrades.js";

export type { ServeInfo };

export interface RunningServer {
  info: ServeInfo;
  /** Serve the server certificates as they are now on disk; connections already open stay. */
  reloadTls(): Promise<void>;
  /** Stop accepting, let in-flight requests and registrations finish, close the store. */
  close(): Promise<void>;
}

/** IoT Hub's message limit is 256 KB; the topic and property bag ride on top. */
const MQTT_LIMITS = { ...DEFAULT_LIMITS, maxPacketBytes: 256 * 1024 + 4096 };

/** How long in-flight requests and registrations may take to finish at shutdown. */
const DRAIN_MS = 10_000;

/** The open connections of a listener, so that shutdown can end those still open after the drain. */
function openConnections(server: TlsServer): Set<Socket> {
  const sockets = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  return sockets;
}

/** The settings that choose each listener's port, for messages that say what to change. */
const PORT_SETTINGS = {
  https: "--https-port (PROVISIO_HTTPS_PORT)",
  mqtt: "--mqtt-port (PROVISIO_MQTT_PORT)",
  amqp: "--amqp-port (PROVISIO_AMQP_PORT)",
  metrics: "--metrics-port (PROVISIO_METRICS_PORT)",
} as const;

async function listen(
  server: NetServer,
  port: number,
  bind: string,
  which: keyof typeof PORT_SETTINGS,
): Promise<number> {
  server.listen(port, bind);
  try {
    await once(server, "listening");
  } catch (err) {
    throw new Error(listenFailure(err, port, bind, which), { cause: err });
  }
  return (server.address() as AddressInfo).port;
}

/** Why a listener could not start, with what to change (issue "The first five minutes"). */
function listenFailure(err: unknown, port: number, bind: string, which: keyof typeof PORT_SETTINGS): string {
  const code = (err as NodeJS.ErrnoException).code;
  const setting = PORT_SETTINGS[which];
  if (code === "EADDRINUSE") {
    const owner = portOwner(port);
    const by = owner ? ` by process ${owner.pid} (${owner.command})` : "";
    return `Port ${port} on ${bind} is already in use${by}: stop that, or choose another ${which.toUpperCase()} port with ${setting} (0 lets the system pick one).`;
  }
  if (code === "EACCES") {
    return `Port ${port} on ${bind} needs privileges this process lacks: choose a port above 1023 with ${setting}.`;
  }
  if (code === "EADDRNOTAVAIL") {
    return `${bind} is not an address of this machine: choose one with --bind (PROVISIO_BIND), or 0.0.0.0 for all.`;
  }
  return `The ${which.toUpperCase()} listener could not start on ${bind}:${port}: ${(err as Error).message}`;
}

function writeInfo(dataDir: string, info: ServeInfo): void {
  const file = join(dataDir, "provisio.json");
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, file);
}

export async function startServer(config: ServeConfig, log: Logger): Promise<RunningServer> {
  const service = await buildService(config, log);
  const tlsOptions = listenerTls(service.tls(), config.minTlsVersion);
  const https = createHttpsListener(tlsOptions, service.https);
  const mqtt = createMqttTlsServer(tlsOptions, service.mqtt("mqtt"), MQTT_LIMITS);
  // The built-in hubs' AMQP endpoint (back ends' cloud-to-device messages, devices) is on the same
  // port: a connection whose open frame names a hub goes to it, and so does one whose first link
  // is a hub's (a device dialing a gateway name, such as 127.0.0.1).
  const hubServe =
    (named: ReturnType<typeof service.hubs.byHost>): AmqpServe =>
    (connection, hooks, first) =>
      serveHubConnection(
        connection,
        service.hubs,
        named,
        service.telemetry,
        { ...hooks, transport: hooks.protocol === "amqp" ? "amqp" : "amqp-ws" },
        first,
      );
  const takeover: AmqpTakeover = {
    byHost: (hostname) => {
      const rt = service.hubs.byHost(hostname);
      return rt && hubServe(rt);
    },
    byLink: (address) => (isHubLinkAddress(address) ? hubServe(undefined) : undefined),
  };
  const amqp = createAmqpTlsServer(tlsOptions, service.engine, { log, takeover });
  // MQTT and AMQP over WebSocket share /$iothub/websocket on the HTTPS port (device-api.md §8).
  const mqttWs = createMqttWebSocketHandler(service.mqtt("mqtt-ws"), MQTT_LIMITS);
  const amqpWs = createAmqpWebSocketHandler(service.engine, { log, takeover });
  const webSockets = serveWebSocketUpgrades(https, [mqttWs, amqpWs]);
  const listeners: TlsServer[] = [https, mqtt, amqp];
  const limits = {
    max:
      config.maxConnections ??
      defaultMaxConnections(
        openFilesLimit(() => readFileSync("/proc/self/limits", "utf8")),
        listeners.length,
      ),
    maxPerAddress: config.maxConnectionsPerAddress,
  };
  limitConnections(https, limits, ["request", "upgrade"]);
  limitConnections(mqtt, limits, ["secureConnection"]);
  limitConnections(amqp, limits, ["secureConnection"]);
  // Device sessions over MQTT and AMQP: what shutdown ends once the work is drained.
  const mqttSessions = openConnections(mqtt);
  const amqpSessions = openConnections(amqp);
  const httpsConnections = openConnections(https);
  const sessions = [mqttSessions, amqpSessions];
  service.metrics?.countConnections("mqtt", () => mqttSessions.size);
  service.metrics?.countConnections("amqp", () => amqpSessions.size);
  service.metrics?.countConnections("mqttws", () => mqttWs.connections());
  service.metrics?.countConnections("amqpws", () => amqpWs.connections());
  // HTTPS connections (device polls, service and hub API clients) less those upgraded to WebSockets.
  service.metrics?.countConnections("http", () => httpsConnections.size - mqttWs.connections() - amqpWs.connections());
  service.onTlsChange((tls) => {
    for (const l of listeners) l.setSecureContext(listenerTls(tls, config.minTlsVersion));
  });

  const metricsListener = service.metrics && createMetricsListener(service.metrics.registry);
  const ports = {
    https: await listen(https, config.httpsPort, config.bind, "https"),
    mqtt: await listen(mqtt, config.mqttPort, config.bind, "mqtt"),
    amqp: await listen(amqp, config.amqpPort, config.bind, "amqp"),
    ...(metricsListener && config.metricsPort !== "off"
      ? { metrics: await listen(metricsListener, config.metricsPort, config.metricsBind, "metrics") }
      : {}),
  };
  service.setHttpsPort(ports.https);
  const info = await service.info(ports);
  writeInfo(service.dataDir, info);
  log.info({ ports, idScope: info.idScope, dataDir: service.dataDir }, "provisio is serving");

  return {
    info,
    reloadTls: () => service.reloadTls(),
    async close() {
      const closed = listeners.map((l) => new Promise<void>((done) => l.close(() => done())));
      webSockets.close();
      metricsListener?.close();
      metricsListener?.closeAllConnections();
      https.closeIdleConnections();
      const timer = setTimeout(() => https.closeAllConnections(), DRAIN_MS);
      await service.drain(DRAIN_MS);
      // Device sessions idle after the drain end now (a device reconnects, as after any outage),
      // not when their own time-outs run out; the answers of drained work are written first.
      await new Promise((resolve) => setImmediate(resolve));
      for (const open of sessions) for (const socket of open) socket.destroy();
      await Promise.all(closed);
      clearTimeout(timer);
      await service.close();
    },
  };
}
