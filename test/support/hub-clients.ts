// Real Azure IoT clients pointed at a built-in hub of a local provisio. Tests never depend on
// DNS: hub host names resolve to 127.0.0.1 through the agent's lookup.
import { Agent } from "node:https";
import deviceSdk from "azure-iot-device";
import iothub from "azure-iothub";
import { selfSignedDeviceCert, type TestCertificate } from "./certs.js";
import type { ProvisioProcess } from "./provisio-process.js";
import { resolveAllTo } from "./service-client.js";

export function hubOf(p: ProvisioProcess, index = 0) {
  const hub = p.info.hubs[index];
  if (!hub) throw new Error(`provisio has no hub #${index}`);
  return hub;
}

/** An https.Agent that dials provisio's HTTPS port for any host name and trusts its CA. */
export function hubAgent(p: ProvisioProcess): Agent {
  const agent = new Agent({ keepAlive: false, ca: p.ca, lookup: resolveAllTo("127.0.0.1") });
  (agent as Agent & { defaultPort: number }).defaultPort = p.info.ports.https;
  return agent;
}

export function registryClient(p: ProvisioProcess, connectionString = hubOf(p).connectionString): iothub.Registry {
  // azure-iothub is CommonJS without named-export hints: take it through the default export.
  const registry = iothub.Registry.fromConnectionString(connectionString);
  // iothub-api.md §10.1: _restApiClient is private but stable in 1.16.x.
  (registry as unknown as { _restApiClient: { setOptions(o: unknown): void } })._restApiClient.setOptions({
    http: { agent: hubAgent(p) },
  });
  return registry;
}

/** A hub device client of the real SDK. */
export type DeviceClient = InstanceType<typeof deviceSdk.Client>;

/**
 * A device client that authenticates to its hub with an X.509 certificate (iothub-api.md §10.3).
 * The provider is built directly: x509=true connection strings ignore GatewayHostName. The SDK
 * exports X509AuthenticationProvider and fromAuthenticationProvider without typings.
 */
export function x509DeviceClient(
  options: { host: string; deviceId: string; gatewayHostName?: string; cert: string; key: string },
  transport: unknown,
): DeviceClient {
  const { X509AuthenticationProvider, Client } = deviceSdk as unknown as {
    X509AuthenticationProvider: new (credentials: unknown) => unknown;
    Client: { fromAuthenticationProvider(provider: unknown, transport: unknown): DeviceClient };
  };
  const { cert, key, ...where } = options;
  return Client.fromAuthenticationProvider(
    new X509AuthenticationProvider({ ...where, x509: { cert, key } }),
    transport,
  );
}

/** What the SDKs' AMQP transports hand to their connect (azure-iot-amqp-base). */
export type AmqpConfig = {
  uri: string;
  sslOptions?: Record<string, unknown>;
  policyOverride?: Record<string, unknown>;
};

/**
 * The SDKs' AMQP transports (service Client's and device Client's) dial `amqps://{host}` on 5671
 * or `wss://{host}:443` and trust the system CAs: this subclass dials the test server instead
 * (the README's "from another port"), with `rewrite` applied to what its connect is given.
 */
// biome-ignore lint/suspicious/noExplicitAny: a mixin's base constructor takes any arguments (TS2545).
export function redirectAmqp<T extends new (...args: any[]) => object>(
  Base: T,
  rewrite: (c: AmqpConfig) => AmqpConfig,
): T {
  return class extends Base {
    // biome-ignore lint/suspicious/noExplicitAny: see above.
    constructor(...args: any[]) {
      super(...args);
      const base = (this as unknown as { _amqp: { connect(c: AmqpConfig, done: unknown): void } })._amqp;
      const connect = base.connect.bind(base);
      base.connect = (c: AmqpConfig, done: unknown) => connect(rewrite(c), done);
    }
  };
}

/** A feedback record as the hub's feedback receiver delivers it (IoT Hub's shape). */
export interface FeedbackRecord {
  originalMessageId: string;
  statusCode: string;
  deviceId: string;
  description: string;
}

/** Opens the service Client's feedback receiver; the returned list fills as records arrive (each batch completed). */
export async function collectFeedback(service: iothub.Client): Promise<FeedbackRecord[]> {
  const records: FeedbackRecord[] = [];
  const receiver = (await service.getFeedbackReceiver()).result as unknown as {
    on(e: "message", l: (m: { data: Buffer }) => void): void;
    complete(m: unknown, cb: () => void): void;
  };
  receiver.on("message", (m) => {
    records.push(...(JSON.parse(m.data.toString()) as FeedbackRecord[]));
    receiver.complete(m, () => undefined);
  });
  return records;
}

/** A self-signed certificate and a hub identity that lists its thumbprint (iothub-api.md §10.3). */
export async function selfSignedHubDevice(registry: iothub.Registry, deviceId: string): Promise<TestCertificate> {
  const cert = await selfSignedDeviceCert(deviceId);
  await registry.create({
    deviceId,
    authentication: { x509Thumbprint: { primaryThumbprint: cert.sha1, secondaryThumbprint: cert.sha1 } },
  });
  return cert;
}
