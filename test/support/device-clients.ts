// The real provisioning device SDK pointed at a local provisio (device-api.md §12): a transport
// per protocol, with our CA and port, and helpers to register and then reach the hub.
import { createHmac } from "node:crypto";
import { Agent } from "node:https";
import provisioningDevice from "azure-iot-provisioning-device";
import provisioningHttp from "azure-iot-provisioning-device-http";
import provisioningMqtt from "azure-iot-provisioning-device-mqtt";
import symmetricKey from "azure-iot-security-symmetric-key";
import type { ProvisioProcess } from "./provisio-process.js";

// CommonJS packages without named-export hints.
const { ProvisioningDeviceClient } = provisioningDevice;
const { Http } = provisioningHttp;
const { Mqtt, MqttWs } = provisioningMqtt;
const { SymmetricKeySecurityClient } = symmetricKey;

export interface RegistrationResult {
  registrationId: string;
  assignedHub: string;
  deviceId: string;
  status: string;
  substatus?: string;
  createdDateTimeUtc?: string;
  etag?: string;
  payload?: unknown;
  symmetricKey?: { enrollmentGroupId?: string };
}

/** A group device's key (behaviors.md §2.1): what a factory would burn into the device. */
export const deriveKey = (groupKey: string, registrationId: string): string =>
  createHmac("sha256", Buffer.from(groupKey, "base64")).update(registrationId, "utf8").digest("base64");

/**
 * The HTTP transport: the SDK never passes a port, so an agent supplies port, CA and source address.
 * `keepAlive`: reuse connections between the register and its polls, as Node's global agent does.
 */
export function httpTransport(p: ProvisioProcess, options: { localAddress?: string; keepAlive?: boolean } = {}) {
  const agent = new Agent({
    keepAlive: options.keepAlive === true,
    ca: p.ca,
    ...(options.localAddress ? { localAddress: options.localAddress } : {}),
  });
  (agent as Agent & { defaultPort: number }).defaultPort = p.info.ports.https;
  const transport = new Http();
  // _httpBase is private; setOptions passes the agent and CA to every request (device-api.md §12).
  (transport as unknown as { _httpBase: { setOptions(o: unknown): void } })._httpBase.setOptions({
    ca: p.ca.toString(),
    http: { agent },
  });
  return transport;
}

export type Transport = ReturnType<typeof httpTransport>;

export async function registerWithKey(
  p: ProvisioProcess,
  transport: unknown,
  registrationId: string,
  key: string,
  payload?: unknown,
  host = "localhost",
): Promise<RegistrationResult> {
  // The SDK packages carry their own copies of azure-iot-common typings, which TypeScript sees as
  // different types: go through the create() parameter types.
  type Create = typeof ProvisioningDeviceClient.create;
  const security = new SymmetricKeySecurityClient(registrationId, key) as unknown as Parameters<Create>[3];
  const client = ProvisioningDeviceClient.create(host, p.info.idScope, transport as Parameters<Create>[2], security);
  if (payload !== undefined) client.setProvisioningPayload(payload as Record<string, unknown>);
  return (await client.register()) as unknown as RegistrationResult;
}

/** The CA goes to the transport's own MqttBase (a private field: the package pins its own copy). */
function trustCa<T>(transport: T, p: ProvisioProcess): T {
  (transport as unknown as { _mqttBase: { setOptions(o: unknown): void } })._mqttBase.setOptions({
    ca: p.ca.toString(),
  });
  return transport;
}

/** MQTT over TLS: the port rides in provisioningHost (device-api.md §12). */
export function mqttTransport(p: ProvisioProcess) {
  return { transport: trustCa(new Mqtt(), p), host: `localhost:${p.info.ports.mqtt}` };
}

/** MQTT over WebSockets: port 443 is hard-coded, so the URI builder is overridden. */
export function mqttWsTransport(p: ProvisioProcess) {
  const port = p.info.ports.https;
  class LocalMqttWs extends MqttWs {
    protected override _getConnectionUri(): string {
      return `wss://localhost:${port}/$iothub/websocket`;
    }
  }
  return { transport: trustCa(new LocalMqttWs(), p), host: "localhost" };
}

/** One device transport under test: what the acceptance suite runs each scenario over. */
export interface DeviceTransport {
  name: string;
  make(p: ProvisioProcess, options?: { localAddress?: string }): { transport: unknown; host: string };
}

export const DEVICE_TRANSPORTS: DeviceTransport[] = [
  { name: "HTTPS", make: (p, o) => ({ transport: httpTransport(p, o), host: "localhost" }) },
  { name: "MQTT", make: (p) => mqttTransport(p) },
  { name: "MQTT over WebSockets", make: (p) => mqttWsTransport(p) },
];

/**
 * The DPS error body a device SDK was refused with: over MQTT the SDK keeps it as `err.result`,
 * over HTTPS it puts the raw body into the message (device-api.md §3.4).
 */
export function refusalOf(err: unknown): { errorCode: number; message: string; trackingId: string } {
  const e = err as Error & { result?: unknown };
  if (e.result && typeof e.result === "object") return e.result as ReturnType<typeof refusalOf>;
  const json = /\{.*\}/s.exec(e.message)?.[0];
  if (!json) throw new Error(`no DPS error body in ${e.name}: ${e.message}`);
  return JSON.parse(json) as ReturnType<typeof refusalOf>;
}
