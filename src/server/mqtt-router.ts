// One MQTT port, two kinds of session (design.md): DPS registrations
// (username `{idScope}/registrations/{id}/...`) and built-in hub devices
// (username `{hubHostName}/{deviceId}/?...`), routed by the CONNECT username.
import type { IConnectPacket } from "mqtt-packet";
import type { BuiltinHubs } from "../builtin-hub/builtin-hubs.js";
import { parseHubUsername } from "../builtin-hub/hub-topics.js";
import { acceptHubDevice } from "../builtin-hub/mqtt-device-session.js";
import type { TelemetryLog } from "../builtin-hub/telemetry-log.js";
import type { Logger } from "../observability/logger.js";
import type { DevicePort } from "../provisioning/device-port.js";
import { CONNACK } from "../transports/mqtt/connack.js";
import { acceptDpsDevice } from "../transports/mqtt/dps-session.js";
import { isDpsUsername } from "../transports/mqtt/dps-topics.js";
import type { MqttConnection, MqttHandler } from "../transports/mqtt/mqtt-connection.js";

export interface MqttRoutes {
  hubs: BuiltinHubs;
  telemetry: TelemetryLog;
  engine: DevicePort;
  log: Logger;
}

function refuse(conn: MqttConnection, code: number, reason: string): void {
  conn.connack(code);
  conn.close(reason);
}

export function mqttRouter(routes: MqttRoutes, transport: "mqtt" | "mqtt-ws"): MqttHandler {
  return (conn, connect: IConnectPacket) => {
    const username = connect.username ?? "";
    if (isDpsUsername(username)) {
      acceptDpsDevice(conn, connect, routes.engine, transport === "mqtt" ? "mqtt" : "mqttws").catch((err: unknown) => {
        routes.log.error({ err }, "MQTT registration session failed");
        conn.close("internal error");
      });
      return;
    }
    const host = parseHubUsername(username)?.host ?? conn.peer.serverName ?? "";
    const hub = routes.hubs.byHost(host);
    if (!hub) return refuse(conn, CONNACK.identifierRejected, `no built-in hub answers for '${host}'`);
    acceptHubDevice(
      conn,
      { clientId: connect.clientId, username, ...(connect.password ? { password: connect.password } : {}) },
      hub,
      routes.telemetry,
      transport,
    ).catch((err: unknown) => {
      routes.log.error({ err }, "MQTT session failed");
      conn.close("internal error");
    });
  };
}
