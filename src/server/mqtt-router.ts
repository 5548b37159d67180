// One MQTT port, two kinds of session (design.md): DPS registrations
// (username `{idScope}/registrations/{id}/...`) and built-in hub devices
// (username `{hubHostName}/{deviceId}/?...`), routed by the CONNECT username.
import type { IConnectPacket } from "mqtt-packet";
import type { BuiltinHubs } from "../iothub/builtin-hubs.js";
import { parseHubUsername } from "../iothub/hub-topics.js";
import { acceptHubDevice, CONNACK } from "../iothub/mqtt-device-session.js";
import type { TelemetryLog } from "../iothub/telemetry-log.js";
import type { Logger } from "../observability/logger.js";
import type { InstanceDirectory } from "../store/instance-directory.js";
import type { MqttConnection, MqttHandler } from "../transports/mqtt/mqtt-connection.js";

export interface MqttRoutes {
  hubs: BuiltinHubs;
  directory: InstanceDirectory;
  telemetry: TelemetryLog;
  log: Logger;
}

function refuse(conn: MqttConnection, code: number, reason: string): void {
  conn.connack(code);
  conn.close(reason);
}

export function mqttRouter(routes: MqttRoutes, transport: "mqtt" | "mqtt-ws"): MqttHandler {
  return (conn, connect: IConnectPacket) => {
    const username = connect.username ?? "";
    const [first, second] = username.split("/");
    if (second === "registrations" && first !== undefined && routes.directory.byScope(first)) {
      // Device registration over MQTT arrives with its own issue; until then, "server unavailable".
      return refuse(conn, CONNACK.serverUnavailable, "DPS registration over MQTT is not served yet");
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
