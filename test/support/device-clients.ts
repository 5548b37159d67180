// The real provisioning device SDK pointed at a local provisio (device-api.md §12): a transport
// per protocol, with our CA and port, and helpers to register and then reach the hub.
import { createHmac } from "node:crypto";
import { Agent } from "node:https";
import provisioningDevice from "azure-iot-provisioning-device";
import provisioningAmqp from "azure-iot-provisioning-device-amqp";
import provisioningHttp from "azure-iot-provisioning-device-http";
import provisioningMqtt from "azure-iot-provisioning-device-mqtt";
import symmetricKey from "azure-iot-security-symmetric-key";
import type { ProvisioProcess } from "./provisio-process.js";

// CommonJS packages without named-export hints.
const { ProvisioningDeviceClient } = provisioningDevice;
const { Http } = provisioningHttp;
const { Mqtt, MqttWs } = provisioningMqtt;
const { Amqp, AmqpWs } = provisioningAmqp;
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

/**
 * The CA for the transport's AMQP connection: with SAS the only hook is the sslOptions its
 * connect() passes on, so that call is wrapped (device-api.md §12; `_amqpBase` is private).
 */
function trustCaOverAmqp<T>(transport: T, p: ProvisioProcess): T {
  type Connect = (config: { sslOptions?: object }, done: unknown) => unknown;
  const base = (transport as unknown as { _amqpBase: { connect: Connect } })._amqpBase;
  const connect = base.connect.bind(base);
  base.connect = (config, done) => connect({ ...config, sslOptions: { ...config.sslOptions, ca: p.ca } }, done);
  return transport;
}

/** AMQP over TLS: the port rides in provisioningHost, as for MQTT. */
export function amqpTransport(p: ProvisioProcess) {
  return { transport: trustCaOverAmqp(new Amqp(), p), host: `localhost:${p.info.ports.amqp}` };
}

/**
 * AMQP over WebSockets: port 443 is hard-coded (and a port in the host crashes it), so the URI
 * builder is overridden; `path` lets a test dial where other SDKs do (the C# SDK: `/`).
 */
export function amqpWsTransport(p: ProvisioProcess, path = "/$iothub/websocket") {
  const port = p.info.ports.https;
  class LocalAmqpWs extends AmqpWs {
    protected override _getConnectionUri(): string {
      return `wss://localhost:${port}${path}`;
    }
  }
  return { transport: trustCaOverAmqp(new LocalAmqpWs(), p), host: "localhost" };
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
  { name: "AMQP", make: (p) => amqpTransport(p) },
  { name: "AMQP over WebSockets", make: (p) => amqpWsTransport(p) },
];

/**
 * The DPS error body a device SDK was refused with: over MQTT the SDK keeps it as `err.result`,
 * over HTTPS it puts the raw body into the message (device-api.md §3.4), over AMQP it hands on
 * the delivery's rejection, whose description is the body (§7.5).
 */
export function refusalOf(err: unknown): { errorCode: number; message: string; trackingId: string } {
  const e = err as Error & { result?: unknown; description?: unknown };
  if (e.result && typeof e.result === "object") return e.result as ReturnType<typeof refusalOf>;
  if (typeof e.description === "string") return JSON.parse(e.description) as ReturnType<typeof refusalOf>;
  const json = /\{.*\}/s.exec(e.message)?.[0];
  if (!json) throw new Error(`no DPS error body in ${e.name}: ${e.message}`);
  return JSON.parse(json) as ReturnType<typeof refusalOf>;
}

/** AMQP conditions as the SDK's own translateError names them (azure-iot-amqp-base). */
const AMQP_ERROR_NAMES: Record<string, string> = {
  "amqp:unauthorized-access": "UnauthorizedError",
  "amqp:not-found": "DeviceNotFoundError",
  "com.microsoft:argument-error": "ArgumentError",
};

/**
 * What the SDK calls a refusal: the error's name, or over AMQP (where the raw rejection reaches
 * the application) the name its condition translates to.
 */
export function refusalName(err: unknown): string {
  const e = err as Error & { condition?: unknown };
  if (typeof e.condition === "string") return AMQP_ERROR_NAMES[e.condition] ?? e.condition;
  return e.name;
}
