// Shared fixtures for the MQTT transport tests: openssl-made TLS material, a TLS/WSS test server
// that records every MqttConnection, an echo session, and a raw TLS MQTT client.

import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import https from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls, { type TLSSocket } from "node:tls";
import mqtt from "mqtt";
import mqttPacket, { type IConnectPacket, type Packet } from "mqtt-packet";
import {
  DEFAULT_LIMITS,
  type MqttConnection,
  type MqttHandler,
  type MqttLimits,
} from "../../../src/transports/mqtt/mqtt-connection.js";
import { createMqttTlsServer } from "../../../src/transports/mqtt/mqtt-listener.js";
import { attachMqttWebSocket } from "../../../src/transports/mqtt/mqtt-websocket.js";

export interface KeyPair {
  key: string;
  cert: string;
  der: Buffer;
}

export interface TlsFixture {
  dir: string;
  /** Server certificate (self-signed, so also the CA clients trust): DNS:localhost, IP:127.0.0.1. */
  server: KeyPair;
  /** Self-signed client certificate. */
  device: KeyPair;
  /** A device CA and a leaf it signed; `leaf.cert` holds only the leaf. */
  deviceCa: KeyPair;
  leaf: KeyPair;
  remove(): void;
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

function openssl(dir: string, args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

function pair(dir: string, name: string): KeyPair {
  const cert = readFileSync(join(dir, `${name}.pem`), "utf8");
  return { key: readFileSync(join(dir, `${name}.key`), "utf8"), cert, der: new X509Certificate(cert).raw };
}

function selfSigned(dir: string, name: string, subject: string, extensions: string[]): KeyPair {
  const ext = extensions.flatMap((e) => ["-addext", e]);
  openssl(
    dir,
    ["req", "-x509", ...EC, "-keyout", `${name}.key`, "-out", `${name}.pem`, "-days", "2"].concat(
      ["-subj", subject],
      ext,
    ),
  );
  return pair(dir, name);
}

export function makeTlsFixture(): TlsFixture {
  const dir = mkdtempSync(join(tmpdir(), "provisio-mqtt-"));
  const server = selfSigned(dir, "server", "/CN=localhost", ["subjectAltName=DNS:localhost,IP:127.0.0.1"]);
  const device = selfSigned(dir, "device", "/CN=device-self", []);
  const deviceCa = selfSigned(dir, "device-ca", "/CN=Test Device CA", [
    "basicConstraints=critical,CA:true",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  openssl(dir, ["req", "-new", ...EC, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=device-leaf"]);
  writeFileSync(join(dir, "leaf.ext"), "basicConstraints=CA:false\nkeyUsage=digitalSignature\n");
  openssl(
    dir,
    ["x509", "-req", "-in", "leaf.csr", "-CA", "device-ca.pem", "-CAkey", "device-ca.key"].concat([
      "-set_serial",
      "7",
      "-days",
      "2",
      "-extfile",
      "leaf.ext",
      "-out",
      "leaf.pem",
    ]),
  );
  const leaf = pair(dir, "leaf");
  return { dir, server, device, deviceCa, leaf, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Accepts everything; PUBACKs QoS 1; SUBACKs (0x80 for topics starting with "forbidden/"); echoes "echo/req" to "echo/res". */
export const echoSession: MqttHandler = (conn) => {
  conn.on("publish", (p) => {
    if (p.qos === 1 && p.messageId !== undefined) conn.puback(p.messageId);
    if (p.topic === "echo/req") conn.publish({ topic: "echo/res", payload: p.payload, qos: 1 });
  });
  conn.on("subscribe", (p) => {
    conn.suback(
      p.messageId ?? 0,
      p.subscriptions.map((s) => (s.topic.startsWith("forbidden/") ? 0x80 : Math.min(s.qos, 1))),
    );
  });
  conn.on("unsubscribe", (p) => conn.unsuback(p.messageId ?? 0));
  conn.connack(0);
};

/** A TLS or HTTPS+WebSocket server recording its connections; `handler` can be swapped per test. */
export class TestServer {
  handler: MqttHandler = echoSession;
  readonly connections: MqttConnection[] = [];
  readonly connects: IConnectPacket[] = [];
  port = 0;
  private readonly sockets = new Set<Socket>();
  private waiters: ((c: MqttConnection) => void)[] = [];
  private ws: { close(): void } | undefined;

  private constructor(private readonly server: tls.Server | https.Server) {
    server.on("connection", (s: Socket) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
  }

  private readonly onConnect: MqttHandler = (conn, connect) => {
    this.connections.push(conn);
    this.connects.push(connect);
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w(conn);
    this.handler(conn, connect);
  };

  static async tls(fx: TlsFixture, limits: MqttLimits = DEFAULT_LIMITS): Promise<TestServer> {
    let self: TestServer | undefined;
    const server = createMqttTlsServer(fx.server, (c, p) => self?.onConnect(c, p), limits);
    self = new TestServer(server);
    await self.listen();
    return self;
  }

  static async wss(fx: TlsFixture, limits: MqttLimits = DEFAULT_LIMITS): Promise<TestServer> {
    const server = https.createServer({
      key: fx.server.key,
      cert: fx.server.cert,
      requestCert: true,
      rejectUnauthorized: false,
    });
    server.on("request", (_req, res) => res.writeHead(404).end());
    const self = new TestServer(server);
    self.ws = attachMqttWebSocket(server, (c, p) => self.onConnect(c, p), limits);
    await self.listen();
    return self;
  }

  private async listen(): Promise<void> {
    this.server.listen(0, "127.0.0.1");
    await once(this.server, "listening");
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** The next connection handed to the handler. */
  nextConnection(): Promise<MqttConnection> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  async stop(): Promise<void> {
    this.ws?.close();
    const closed = new Promise((resolve) => this.server.close(resolve));
    for (const s of this.sockets) s.destroy();
    await closed;
  }
}

/** Resolves with the close reason (immediately if already closed). */
export function closeReason(conn: MqttConnection, timeoutMs = 5000): Promise<string> {
  if (conn.closed) return Promise.resolve(conn.closeReason ?? "");
  return withTimeout(
    once(conn, "close").then(([reason]) => reason as string),
    timeoutMs,
    "connection close",
  );
}

export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface ClientOptions {
  clientId?: string;
  username?: string;
  password?: string;
  keepalive?: number;
  cert?: string;
  key?: string;
}

/** mqtt.js v4 client over TLS (or WSS when `wss` is set); resolves on CONNACK 0, rejects on an error. */
export async function connectClient(
  fx: TlsFixture,
  port: number,
  opts: ClientOptions = {},
  wss = false,
): Promise<mqtt.MqttClient> {
  const url = wss ? `wss://127.0.0.1:${port}/$iothub/websocket` : `mqtts://127.0.0.1:${port}`;
  const client = mqtt.connect(url, {
    ca: fx.server.cert,
    servername: "localhost",
    protocolVersion: 4,
    clientId: opts.clientId ?? "dev-1",
    username: opts.username,
    password: opts.password,
    keepalive: opts.keepalive ?? 60,
    cert: opts.cert,
    key: opts.key,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    wsOptions: wss ? { ca: fx.server.cert, servername: "localhost" } : undefined,
  } as mqtt.IClientOptions); // servername is passed through to tls.connect but missing from IClientOptions
  try {
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        client.once("connect", () => resolve());
        client.once("error", reject);
        client.once("close", () => reject(new Error("closed before CONNACK")));
      }),
      5000,
      "mqtt client connect",
    );
  } catch (err) {
    client.end(true);
    throw err;
  }
  client.on("error", () => {}); // later errors surface through the assertions, not as unhandled events
  return client;
}

export function endClient(client: mqtt.MqttClient): Promise<void> {
  return new Promise((resolve) => client.end(true, {}, () => resolve()));
}

/** Publishes to echo/req and resolves with the echoed payload (client must be subscribed to echo/res). */
export async function echoRoundTrip(client: mqtt.MqttClient, payload: string): Promise<string> {
  const got = new Promise<string>((resolve) => {
    const onMessage = (topic: string, message: Buffer) => {
      if (topic !== "echo/res") return;
      client.removeListener("message", onMessage);
      resolve(message.toString());
    };
    client.on("message", onMessage);
  });
  await new Promise<void>((resolve, reject) =>
    client.publish("echo/req", payload, { qos: 1 }, (err) => (err ? reject(err) : resolve())),
  );
  return withTimeout(got, 5000, "echo");
}

export function subscribe(client: mqtt.MqttClient, topics: Record<string, { qos: 0 | 1 | 2 }>): Promise<number[]> {
  return new Promise((resolve, reject) =>
    client.subscribe(topics, (err, granted) => (err ? reject(err) : resolve(granted.map((g) => g.qos)))),
  );
}

export const connectPacket = (overrides: Partial<IConnectPacket> = {}): Buffer =>
  mqttPacket.generate({
    cmd: "connect",
    protocolId: "MQTT",
    protocolVersion: 4,
    clean: true,
    clientId: "raw-1",
    keepalive: 0,
    ...overrides,
  });

/** A TLS socket speaking raw MQTT bytes; incoming packets are parsed and queued. */
export class RawClient {
  readonly packets: Packet[] = [];
  readonly closedAt: Promise<number>;
  readonly openedAt = Date.now();
  private waiter: (() => void) | undefined;

  private constructor(readonly socket: TLSSocket) {
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    parser.on("packet", (p: Packet) => {
      this.packets.push(p);
      this.waiter?.();
    });
    parser.on("error", () => socket.destroy());
    socket.on("data", (b: Buffer) => parser.parse(b));
    socket.on("error", () => {});
    this.closedAt = new Promise((resolve) =>
      socket.once("close", () => {
        resolve(Date.now());
        this.waiter?.();
      }),
    );
  }

  static async connect(fx: TlsFixture, port: number, auth: { cert?: string; key?: string } = {}): Promise<RawClient> {
    const socket = tls.connect({ host: "127.0.0.1", port, ca: fx.server.cert, servername: "localhost", ...auth });
    await withTimeout(once(socket, "secureConnect"), 5000, "TLS handshake");
    return new RawClient(socket);
  }

  get closed(): boolean {
    return this.socket.destroyed || this.socket.closed;
  }

  write(bytes: Buffer | Uint8Array): void {
    if (!this.closed) this.socket.write(bytes);
  }

  /** The next received packet (in arrival order), or null if the socket closes first. */
  async next(timeoutMs = 5000): Promise<Packet | null> {
    const deadline = Date.now() + timeoutMs;
    while (this.packets.length === 0) {
      if (this.closed) return null;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("timed out waiting for a packet");
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.waiter = undefined;
    }
    return this.packets.shift() ?? null;
  }

  /** Milliseconds from TLS connect until the server closed the socket. */
  async closedAfter(timeoutMs = 5000): Promise<number> {
    return (await withTimeout(this.closedAt, timeoutMs, "server to close the socket")) - this.openedAt;
  }

  destroy(): void {
    this.socket.destroy();
  }
}
