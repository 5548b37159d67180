// A DPS device speaking MQTT by hand (device-api.md §6) over TLS or WebSockets, for tests that
// look at what the SDKs hide: CONNACK codes, response topics, error bodies.
import { randomUUID } from "node:crypto";
import mqtt from "mqtt";
import type { ProvisioProcess } from "./provisio-process.js";

export type MqttFlavour = "mqtt" | "mqtt-ws";
export const MQTT_FLAVOURS: MqttFlavour[] = ["mqtt", "mqtt-ws"];

export interface DpsAnswer {
  status: number;
  /** The answer topic's query: `$rid`, `retry-after`. */
  query: URLSearchParams;
  topic: string;
  body: Record<string, unknown>;
}

export interface DpsMqttDevice {
  /** The CONNACK return code (0 = accepted). */
  returnCode: number;
  /** Resolves when the connection closes (the server ended it, or end()). */
  closed: Promise<void>;
  register(body?: unknown): Promise<DpsAnswer>;
  poll(operationId: string): Promise<DpsAnswer>;
  end(): Promise<void>;
}

export interface DpsConnectOptions {
  registrationId: string;
  password?: string;
  idScope?: string;
  clientId?: string;
  username?: string;
  cert?: string;
  key?: string;
  /** The source address to connect from (127.0.0.x). */
  localAddress?: string;
}

/** Connects and subscribes (when accepted); a refused CONNECT resolves with its return code. */
export async function connectDps(
  p: ProvisioProcess,
  flavour: MqttFlavour,
  o: DpsConnectOptions,
): Promise<DpsMqttDevice> {
  const url =
    flavour === "mqtt"
      ? `mqtts://127.0.0.1:${p.info.ports.mqtt}`
      : `wss://127.0.0.1:${p.info.ports.https}/$iothub/websocket`;
  const tlsOptions = {
    ca: p.ca,
    servername: "localhost",
    cert: o.cert,
    key: o.key,
    ...(o.localAddress ? { localAddress: o.localAddress } : {}),
  };
  const client = mqtt.connect(url, {
    ...tlsOptions,
    protocolVersion: 4,
    clean: true,
    clientId: o.clientId ?? o.registrationId,
    username: o.username ?? `${o.idScope ?? p.info.idScope}/registrations/${o.registrationId}/api-version=2019-03-31`,
    password: o.password,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    wsOptions: flavour === "mqtt-ws" ? tlsOptions : undefined,
  } as mqtt.IClientOptions); // servername goes through to tls.connect but is missing from IClientOptions
  const returnCode = await new Promise<number>((resolve, reject) => {
    client.once("connect", (connack: mqtt.IConnackPacket) => resolve(connack.returnCode ?? 0));
    client.once("error", (err: Error & { code?: number }) =>
      typeof err.code === "number" ? resolve(err.code) : reject(err),
    );
  });
  client.on("error", () => {}); // later errors show up as missing answers
  const answers = new Map<string, (a: DpsAnswer) => void>();
  client.on("message", (topic, payload) => {
    const m = /^\$dps\/registrations\/res\/(\d+)\/\?(.*)$/.exec(topic);
    if (!m) return;
    const query = new URLSearchParams(m[2]);
    const text = payload.toString();
    answers.get(query.get("$rid") ?? "")?.({
      status: Number(m[1]),
      query,
      topic,
      body: text === "" ? {} : (JSON.parse(text) as Record<string, unknown>),
    });
  });
  if (returnCode === 0) {
    await new Promise<void>((resolve, reject) =>
      client.subscribe("$dps/registrations/res/#", { qos: 1 }, (err) => (err ? reject(err) : resolve())),
    );
  }
  const ask = (topic: (rid: string) => string, payload: string): Promise<DpsAnswer> => {
    const rid = randomUUID();
    return new Promise<DpsAnswer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer to ${topic(rid)} in 10 s`)), 10_000);
      answers.set(rid, (a) => {
        clearTimeout(timer);
        answers.delete(rid);
        resolve(a);
      });
      client.publish(topic(rid), payload, { qos: 1 });
    });
  };
  const closed = new Promise<void>((resolve) => client.once("close", () => resolve()));
  return {
    returnCode,
    closed,
    register: (body = { registrationId: o.registrationId }) =>
      ask((rid) => `$dps/registrations/PUT/iotdps-register/?$rid=${rid}`, JSON.stringify(body)),
    poll: (operationId) =>
      ask((rid) => `$dps/registrations/GET/iotdps-get-operationstatus/?$rid=${rid}&operationId=${operationId}`, " "),
    end: () => new Promise((resolve) => client.end(true, {}, () => resolve())),
  };
}

export const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
