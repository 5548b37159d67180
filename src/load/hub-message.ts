// After provisioning, what a device does next: connect to its assigned IoT hub over MQTT 3.1.1
// (iothub-api.md: username `{hub}/{deviceId}/?api-version=…`, a device SAS token for
// `{hub}/devices/{deviceId}` as password, or its X.509 certificate and no password), publish one
// telemetry message QoS 1 to `devices/{deviceId}/messages/events/`, wait for the PUBACK, leave.
import mqttPacket, { type Packet } from "mqtt-packet";
import { createSasToken } from "../attestation/sas-token.js";
import { dial, type Endpoint } from "./dial.js";
import { REQUEST_TIMEOUT_MS } from "./load-run.js";

const HUB_API_VERSION = "2021-04-12";

export interface HubDevice {
  hub: string;
  deviceId: string;
  /** The device's symmetric key (base64); absent with X.509 (the certificate is in the endpoint's context). */
  key?: string;
}

/** Sends one message; resolves when the hub acknowledged it, rejects with what went wrong. */
export function sendHubMessage(target: Endpoint, d: HubDevice, payload: Buffer): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const wire = dial(target, "mqtt");
    const socket = wire.stream;
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    let settled = false;
    const finish = (err?: Error): void => {
      if (settled) return;
      settled = true;
      wire.idle(0, () => {});
      if (err) {
        socket.destroy();
        reject(err);
      } else {
        socket.end(mqttPacket.generate({ cmd: "disconnect" }));
        resolve();
      }
    };
    parser.on("packet", (p: Packet) => {
      if (p.cmd === "connack") {
        if (p.returnCode !== 0) {
          finish(new Error(`hub ${d.hub} refused the connection (CONNACK ${p.returnCode ?? "?"})`));
          return;
        }
        const topic = `devices/${d.deviceId}/messages/events/`;
        socket.write(
          mqttPacket.generate({ cmd: "publish", topic, payload, qos: 1, messageId: 1, dup: false, retain: false }),
        );
      } else if (p.cmd === "puback") finish();
    });
    parser.on("error", (err: Error) => finish(new Error(`malformed MQTT from hub ${d.hub}: ${err.message}`)));
    socket.on("data", (chunk: Buffer) => {
      if (!settled) parser.parse(chunk);
    });
    socket.on("error", (err) => finish(err));
    socket.on("close", () => finish(new Error(`hub ${d.hub} closed the connection`)));
    wire.idle(REQUEST_TIMEOUT_MS, () =>
      finish(new Error(`no answer from hub ${d.hub} within ${REQUEST_TIMEOUT_MS} ms`)),
    );
    const expiry = Math.floor(Date.now() / 1000) + 3600;
    socket.write(
      mqttPacket.generate({
        cmd: "connect",
        protocolId: "MQTT",
        protocolVersion: 4,
        clean: true,
        keepalive: 60,
        clientId: d.deviceId,
        username: `${d.hub}/${d.deviceId}/?api-version=${HUB_API_VERSION}`,
        ...(d.key
          ? { password: Buffer.from(createSasToken(d.key, `${d.hub}/devices/${d.deviceId}`, expiry), "utf8") }
          : {}),
      }),
    );
  });
}
