// A device's MQTT session with a built-in hub (iothub-api.md §6): CONNECT as an ordered list
// of steps, then telemetry, twin GET, reported PATCH, desired pushes and direct methods.
import { errorBody, toProvisioError } from "../domain/errors.js";
import { nowUtc } from "../domain/etag.js";
import type { DeviceIdentity } from "../domain/hub.js";
import type { JsonObject } from "../domain/json.js";
import { parseJson } from "../domain/json.js";
import { CONNACK } from "../transports/mqtt/connack.js";
import type { HubRuntime } from "./builtin-hubs.js";
import { moduleKey } from "./device-identity.js";
import type { LiveSession } from "./device-sessions.js";
import { type MethodResult, PendingMethodCalls } from "./direct-methods.js";
import { authenticateDevice, certificateAuthenticates } from "./hub-auth.js";
import {
  c2dPropertyBag,
  classifyPublish,
  DESIRED_FILTER,
  desiredTopic,
  devicebound,
  grantFor,
  METHODS_FILTER,
  methodRequestTopic,
  parseHubUsername,
  twinResponseTopic,
} from "./hub-topics.js";
import { parsePropertyBag } from "./property-bag.js";
import type { TelemetryLog } from "./telemetry-log.js";
import { deviceTwinPropertiesJson } from "./twin.js";

/** The part of an MQTT connection a hub session uses (transports/mqtt provides it). */
export interface DeviceConnection {
  readonly peer: { remoteAddress: string; leafCertificate: Buffer | undefined };
  connack(returnCode: number): void;
  /** Returns the packet identifier of a QoS 1 publish (0 for QoS 0, -1 when closed). */
  publish(p: { topic: string; payload: Buffer | string; qos: 0 | 1 }): number | undefined;
  puback(messageId: number): void;
  suback(messageId: number, granted: number[]): void;
  unsuback(messageId: number): void;
  close(reason: string): void;
  on(
    event: "publish",
    listener: (p: { topic: string; payload: Buffer | string; qos: number; messageId?: number }) => void,
  ): unknown;
  on(
    event: "subscribe",
    listener: (p: { messageId: number; subscriptions: { topic: string; qos: number }[] }) => void,
  ): unknown;
  on(event: "unsubscribe", listener: (p: { messageId: number }) => void): unknown;
  on(event: "puback", listener: (p: { messageId?: number }) => void): unknown;
  on(event: "close", listener: (reason: string) => void): unknown;
}

export interface ConnectInfo {
  clientId: string;
  username?: string;
  password?: Buffer | string;
}

class Refused extends Error {
  constructor(
    readonly code: number,
    reason: string,
  ) {
    super(reason);
  }
}

/**
 * Step: the username names this hub and the device (or module); the client id is the device id,
 * or `{deviceId}/{moduleId}` for a module. Resolves to the registry key.
 */
function checkIdentity(connect: ConnectInfo, rt: HubRuntime): { key: string; module: boolean } {
  const parsed = connect.username ? parseHubUsername(connect.username) : undefined;
  const key = parsed && (parsed.moduleId ? moduleKey(parsed.deviceId, parsed.moduleId) : parsed.deviceId);
  if (!parsed || key !== connect.clientId) {
    throw new Refused(
      CONNACK.identifierRejected,
      "username must be {hub}/{deviceId}[/{moduleId}]/?... with clientId = deviceId[/moduleId]",
    );
  }
  if (parsed.host.replace(/:\d+$/, "").toLowerCase() !== rt.hub.hostName.toLowerCase()) {
    throw new Refused(CONNACK.identifierRejected, `username names hub '${parsed.host}', not '${rt.hub.hostName}'`);
  }
  return { key: key as string, module: parsed.moduleId !== undefined };
}

/** Step: SAS password, or a client certificate whose thumbprint the identity lists. */
function authenticate(identity: DeviceIdentity, connect: ConnectInfo, conn: DeviceConnection, rt: HubRuntime): void {
  if (identity.status !== "enabled") throw new Refused(CONNACK.notAuthorized, "device is disabled");
  if (connect.password !== undefined && connect.password.length > 0) {
    try {
      authenticateDevice(connect.password.toString(), rt.hub, identity);
      return;
    } catch (err) {
      throw new Refused(CONNACK.notAuthorized, err instanceof Error ? err.message : "bad SAS token");
    }
  }
  if (certificateAuthenticates(identity, conn.peer.leafCertificate)) return;
  throw new Refused(CONNACK.notAuthorized, "no valid SAS token or registered client certificate was presented");
}

/** Runs the CONNECT steps; on success the session serves the device until the connection closes. */
export async function acceptHubDevice(
  conn: DeviceConnection,
  connect: ConnectInfo,
  rt: HubRuntime,
  telemetry: TelemetryLog,
  transport: "mqtt" | "mqtt-ws",
): Promise<void> {
  let deviceId: string;
  // A module's session works on the module registry and its own sessions.
  let view: HubRuntime = rt;
  try {
    const who = checkIdentity(connect, rt);
    deviceId = who.key;
    if (who.module) view = { ...rt, registry: rt.modules, sessions: rt.moduleSessions };
    const rec = await view.registry.find(deviceId);
    if (!rec)
      throw new Refused(CONNACK.notAuthorized, `${who.module ? "module" : "device"} '${deviceId}' is not registered`);
    authenticate(rec.identity, connect, conn, rt);
  } catch (err) {
    conn.connack(err instanceof Refused ? err.code : CONNACK.serverUnavailable);
    conn.close(err instanceof Error ? err.message : "refused");
    return;
  }
  new HubDeviceSession(conn, deviceId, view, telemetry, transport).start();
}

class HubDeviceSession implements LiveSession {
  #desiredSubscribed = false;
  #methodsSubscribed = false;
  #c2dSubscribed = false;
  #closed = false;
  /** Cloud-to-device messages published at QoS 1 and not yet acknowledged: packet id → lock token. */
  readonly #unacked = new Map<number, string>();
  /** Direct method calls sent and not yet answered, by `$rid`. */
  readonly #calls: PendingMethodCalls;
  #nextRid = 1;

  constructor(
    private readonly conn: DeviceConnection,
    readonly deviceId: string,
    private readonly rt: HubRuntime,
    private readonly telemetry: TelemetryLog,
    private readonly transport: "mqtt" | "mqtt-ws",
  ) {
    this.#calls = new PendingMethodCalls(deviceId);
  }

  start(): void {
    const { conn, rt } = this;
    rt.sessions.add(this);
    conn.on("close", () => {
      this.#closed = true;
      rt.sessions.remove(this);
      this.#calls.failAll();
      void rt.registry.setConnected(this.deviceId, false);
    });
    conn.on("subscribe", (p) => {
      const granted = p.subscriptions.map((s) => grantFor(s.topic, this.deviceId, s.qos));
      const grants = (filter: string) => p.subscriptions.some((s, i) => s.topic === filter && granted[i] !== 0x80);
      if (grants(DESIRED_FILTER)) this.#desiredSubscribed = true;
      conn.suback(p.messageId ?? 0, granted);
      if (grants(devicebound(this.deviceId)) && !this.#c2dSubscribed) {
        this.#c2dSubscribed = true;
        this.deliverCloudToDevice();
      }
      if (grants(METHODS_FILTER) && !this.#methodsSubscribed) {
        this.#methodsSubscribed = true;
        rt.sessions.listeningForMethods(this);
      }
    });
    conn.on("unsubscribe", (p) => conn.unsuback(p.messageId ?? 0));
    // The device has a cloud-to-device message: it leaves the queue (IoT Hub completes on PUBACK).
    conn.on("puback", (p) => {
      const lockToken = p.messageId === undefined ? undefined : this.#unacked.get(p.messageId);
      if (lockToken === undefined || p.messageId === undefined) return;
      this.#unacked.delete(p.messageId);
      this.rt.c2d.complete(this.deviceId, lockToken);
    });
    conn.on("publish", (p) => {
      this.onPublish(p).catch(() => conn.close("internal error handling a publish"));
    });
    conn.connack(CONNACK.accepted);
    void rt.registry.setConnected(this.deviceId, true);
  }

  pushDesired(notification: JsonObject, version: number): void {
    if (this.#desiredSubscribed && !this.#closed) {
      this.conn.publish({ topic: desiredTopic(version), payload: JSON.stringify(notification), qos: 0 });
    }
  }

  /** Publishes every message waiting for the device (each under a lock until its PUBACK). */
  deliverCloudToDevice(): void {
    if (!this.#c2dSubscribed || this.#closed) return;
    for (let d = this.rt.c2d.receive(this.deviceId); d; d = this.rt.c2d.receive(this.deviceId)) {
      const id = this.conn.publish({
        topic: `${devicebound(this.deviceId).slice(0, -1)}${c2dPropertyBag(d.message)}`,
        payload: d.message.body,
        qos: 1,
      });
      if (id === undefined || id <= 0) return; // closed: the lock runs out and the message waits again
      this.#unacked.set(id, d.lockToken);
    }
  }

  get listensForMethods(): boolean {
    return this.#methodsSubscribed && !this.#closed;
  }

  invokeMethod(name: string, payload: string, timeoutSeconds: number): Promise<MethodResult> {
    const rid = String(this.#nextRid++);
    return this.#calls.call(rid, name, timeoutSeconds, () => {
      this.conn.publish({ topic: methodRequestTopic(name, rid), payload, qos: 0 });
    });
  }

  close(reason: string): void {
    this.conn.close(reason);
  }

  private async onPublish(p: {
    topic: string;
    payload: Buffer | string;
    qos: number;
    messageId?: number;
  }): Promise<void> {
    const what = classifyPublish(p.topic);
    const payload = typeof p.payload === "string" ? Buffer.from(p.payload) : p.payload;
    switch (what.kind) {
      case "telemetry": {
        const from = what.moduleId ? moduleKey(what.deviceId, what.moduleId) : what.deviceId;
        if (from !== this.deviceId) return this.conn.close("telemetry for another device or module");
        const properties = parsePropertyBag(what.bag);
        if (what.moduleId) properties.system["iothub-connection-module-id"] = what.moduleId;
        this.telemetry.append({
          hub: this.rt.hub.name,
          deviceId: what.deviceId,
          enqueuedTimeUtc: nowUtc(),
          transport: this.transport,
          properties,
          body: payload,
        });
        break;
      }
      case "twinGet": {
        const rec = await this.rt.registry.get(this.deviceId);
        this.reply(twinResponseTopic(200, what.rid), JSON.stringify(deviceTwinPropertiesJson(rec.twin)));
        break;
      }
      case "reportedPatch":
        try {
          const version = await this.rt.registry.patchReported(this.deviceId, parseJson(payload));
          this.reply(twinResponseTopic(204, what.rid, version), "");
        } catch (err) {
          // The SDK reads failures from an errorCode in the body, not from the topic (iothub-api.md §6.5).
          const e = toProvisioError(err);
          this.reply(twinResponseTopic(e.status, what.rid), JSON.stringify(errorBody(e)));
        }
        break;
      case "methodResponse":
        this.#calls.answer(what.rid, what.status, payload);
        break;
      default:
        // Not a broker: publishes to other topics go nowhere (iothub-api.md §9.16).
        break;
    }
    if (p.qos === 1 && p.messageId !== undefined) this.conn.puback(p.messageId);
  }

  private reply(topic: string, payload: string): void {
    if (!this.#closed) this.conn.publish({ topic, payload, qos: 0 });
  }
}
