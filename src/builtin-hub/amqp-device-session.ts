// A device's (or module's) session with a built-in hub over AMQP, as the device SDKs use it:
// telemetry on its `messages/events` link, cloud-to-device messages on `messages/devicebound`
// (settled by the device: accepted completes, rejected rejects, released or modified abandons),
// the twin link pair (GET, PATCH reported, PUT/DELETE desired notifications, desired pushes) and
// the methods link pair. One per device and connection; links are attached by the connection
// (amqp-hub-connection.ts) once the device is authorized.
import { randomUUID } from "node:crypto";
import type rhea from "rhea";
import { errorBody, ProvisioError, toProvisioError } from "../domain/errors.js";
import { nowUtc } from "../domain/etag.js";
import type { JsonObject } from "../domain/json.js";
import { parseJson } from "../domain/json.js";
import type { DeviceChannel } from "./amqp-hub-links.js";
import {
  type AmqpMessage,
  bodyBytes,
  cloudToDeviceMessage,
  desiredPush,
  MAX_TELEMETRY_BYTES,
  methodRequest,
  methodResponseOf,
  telemetryProperties,
  twinRequestOf,
  twinResponse,
  unbatch,
} from "./amqp-hub-messages.js";
import type { HubRuntime } from "./builtin-hubs.js";
import type { LiveSession } from "./device-sessions.js";
import { type MethodResult, PendingMethodCalls } from "./direct-methods.js";
import type { TelemetryLog } from "./telemetry-log.js";
import { deviceTwinPropertiesJson } from "./twin.js";

type Link = rhea.Sender | rhea.Receiver;

export interface AmqpDeviceContext {
  /** The hub as this identity sees it: the device registry, or the module registry and sessions. */
  view: HubRuntime;
  telemetry: TelemetryLog;
  transport: "amqp" | "amqp-ws";
  /** Ends this session's links (and the connection when nothing else uses it). */
  detach(session: AmqpDeviceSession, condition: string, reason: string): void;
}

export class AmqpDeviceSession implements LiveSession {
  /** The links of this identity, by channel and direction (ours: a sender sends to the device). */
  readonly #senders = new Map<DeviceChannel, rhea.Sender>();
  readonly #receivers = new Map<DeviceChannel, rhea.Receiver>();
  /** Cloud-to-device messages sent and not yet settled by the device: delivery → lock token. */
  readonly #unsettled = new Map<rhea.Delivery, string>();
  readonly #calls: PendingMethodCalls;
  #desiredSubscribed = false;
  #ended = false;
  #expiry: NodeJS.Timeout | undefined;

  constructor(
    /** The registry key: the device id, or `{deviceId}/{moduleId}`. */
    readonly deviceId: string,
    private readonly ctx: AmqpDeviceContext,
  ) {
    this.#calls = new PendingMethodCalls(deviceId);
  }

  get links(): Link[] {
    return [...this.#senders.values(), ...this.#receivers.values()];
  }

  /** A link of this identity is attached (the first one makes it connected). */
  attach(link: Link, channel: DeviceChannel): void {
    const first = this.links.length === 0;
    if (link.is_sender()) this.#senders.set(channel, link as rhea.Sender);
    else this.#receivers.set(channel, link as rhea.Receiver);
    if (first) {
      this.ctx.view.sessions.add(this);
      void this.ctx.view.registry.setConnected(this.deviceId, true);
    }
    if (channel === "devicebound" && link.is_sender()) this.deliverCloudToDevice();
    if (channel === "methods" && link.is_sender()) this.ctx.view.sessions.listeningForMethods(this);
  }

  /** A link went (the device detached it, or the connection closed); the last one ends the session. */
  detached(link: Link): void {
    for (const [channel, l] of this.#senders) if (l === link) this.#senders.delete(channel);
    for (const [channel, l] of this.#receivers) if (l === link) this.#receivers.delete(channel);
    if (link.is_sender()) this.#abandonUnsettled((d) => d.link === link);
    if (this.links.length === 0) this.end();
  }

  /** The session is over: its locks are given back, its calls fail, the device is disconnected. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    clearTimeout(this.#expiry);
    this.#abandonUnsettled(() => true);
    this.#calls.failAll();
    this.ctx.view.sessions.remove(this);
    void this.ctx.view.registry.setConnected(this.deviceId, false);
  }

  /** The credential lasts until `untilMs` (a SAS token's expiry): then the session ends unless renewed. */
  authorizedUntil(untilMs: number, renewed: () => number | undefined): void {
    clearTimeout(this.#expiry);
    if (!Number.isFinite(untilMs)) return;
    this.#expiry = setTimeout(
      () => {
        const next = renewed();
        if (next !== undefined && next > Date.now()) return this.authorizedUntil(next, renewed);
        this.ctx.detach(
          this,
          "amqp:unauthorized-access",
          "the SAS token expired: put a new one on $cbs before it does",
        );
      },
      Math.max(0, untilMs - Date.now()),
    );
    this.#expiry.unref();
  }

  /** A message the device sent on one of its links. */
  message(channel: DeviceChannel, delivery: rhea.Delivery, message: AmqpMessage): void {
    if (channel === "events") this.#telemetry(delivery, message);
    else if (channel === "twin") void this.#twin(delivery, message);
    else if (channel === "methods") this.#methodAnswer(delivery, message);
    else
      delivery.reject({
        condition: "amqp:not-allowed",
        description: "the device does not send on its devicebound link",
      });
  }

  /** The device settled a cloud-to-device message. */
  settled(delivery: rhea.Delivery, outcome: "accepted" | "rejected" | "released" | "modified"): void {
    const lockToken = this.#unsettled.get(delivery);
    if (lockToken === undefined) return;
    this.#unsettled.delete(delivery);
    const { c2d } = this.ctx.view;
    if (outcome === "accepted") c2d.complete(this.deviceId, lockToken);
    else if (outcome === "rejected") c2d.reject(this.deviceId, lockToken);
    else {
      c2d.abandon(this.deviceId, lockToken);
      this.deliverCloudToDevice();
    }
  }

  // LiveSession

  get listensForMethods(): boolean {
    return !this.#ended && this.#senders.has("methods");
  }

  pushDesired(notification: JsonObject, version: number): void {
    const twin = this.#senders.get("twin");
    if (this.#desiredSubscribed && twin && !this.#ended) twin.send(desiredPush(notification, version));
  }

  /** Sends waiting messages while the device gives credit (each under a lock until settled). */
  deliverCloudToDevice(): void {
    const link = this.#senders.get("devicebound");
    if (!link || this.#ended) return;
    while (link.sendable()) {
      const d = this.ctx.view.c2d.receive(this.deviceId);
      if (!d) return;
      this.#unsettled.set(link.send(cloudToDeviceMessage(d)), d.lockToken);
    }
  }

  invokeMethod(name: string, payload: string, timeoutSeconds: number): Promise<MethodResult> {
    const link = this.#senders.get("methods");
    if (!link) {
      return Promise.reject(
        new ProvisioError("hubDeviceNotOnline", { id: this.deviceId, why: "it is not attached to its methods link" }),
      );
    }
    const requestId = randomUUID();
    return this.#calls.call(requestId, name, timeoutSeconds, () => {
      link.send(methodRequest(requestId, name, payload));
    });
  }

  close(reason: string, replaced = false): void {
    // A newer connection of the same identity takes over: IoT Hub says so with `amqp:link:stolen`.
    this.ctx.detach(this, replaced ? "amqp:link:stolen" : "amqp:unauthorized-access", reason);
  }

  #abandonUnsettled(which: (d: rhea.Delivery) => boolean): void {
    for (const [delivery, lockToken] of this.#unsettled) {
      if (!which(delivery)) continue;
      this.#unsettled.delete(delivery);
      this.ctx.view.c2d.abandon(this.deviceId, lockToken);
    }
  }

  #telemetry(delivery: rhea.Delivery, message: AmqpMessage): void {
    let messages: AmqpMessage[];
    try {
      messages = unbatch(message, (delivery as rhea.Delivery & { format?: number }).format);
    } catch (err) {
      delivery.reject({ condition: "amqp:decode-error", description: (err as Error).message });
      return;
    }
    const bodies = messages.map((m) => bodyBytes(m.body));
    const size = bodies.reduce((n, b) => n + b.length, 0);
    if (size > MAX_TELEMETRY_BYTES) {
      delivery.reject({
        condition: "amqp:link:message-size-exceeded",
        description: `device-to-cloud messages are at most ${MAX_TELEMETRY_BYTES} bytes (a batch in all); this has ${size}`,
      });
      return;
    }
    const slash = this.deviceId.indexOf("/");
    messages.forEach((m, i) => {
      const properties = telemetryProperties(m);
      if (slash > 0) properties.system["iothub-connection-module-id"] = this.deviceId.slice(slash + 1);
      this.ctx.telemetry.append({
        hub: this.ctx.view.hub.name,
        deviceId: slash > 0 ? this.deviceId.slice(0, slash) : this.deviceId,
        enqueuedTimeUtc: nowUtc(),
        transport: this.ctx.transport,
        properties,
        body: bodies[i] as Buffer,
      });
    });
    delivery.accept();
  }

  async #twin(delivery: rhea.Delivery, message: AmqpMessage): Promise<void> {
    const answerOn = this.#senders.get("twin");
    if (!answerOn) {
      return delivery.reject({
        condition: "amqp:precondition-failed",
        description: "attach the twin receiver link before sending twin requests: the answers go there",
      });
    }
    delivery.accept();
    const request = twinRequestOf(message);
    const answer = (status: number, body: string, version?: number) => {
      if (!this.#ended) answerOn.send(twinResponse(message.correlation_id, status, body, version));
    };
    const fail = (err: unknown) => {
      const e = toProvisioError(err);
      answer(e.status, JSON.stringify(errorBody(e)));
    };
    try {
      switch (request.kind) {
        case "get": {
          const rec = await this.ctx.view.registry.get(this.deviceId);
          return answer(200, JSON.stringify(deviceTwinPropertiesJson(rec.twin)), rec.twin.version);
        }
        case "patchReported": {
          const version = await this.ctx.view.registry.patchReported(this.deviceId, parseJson(request.body));
          return answer(204, "", version);
        }
        case "subscribeDesired":
          this.#desiredSubscribed = true;
          return answer(200, "");
        case "unsubscribeDesired":
          this.#desiredSubscribed = false;
          return answer(200, "");
        default:
          return fail(new ProvisioError("hubArgumentInvalid", { detail: request.reason }));
      }
    } catch (err) {
      fail(err);
    }
  }

  #methodAnswer(delivery: rhea.Delivery, message: AmqpMessage): void {
    const answer = methodResponseOf(message);
    if ("refused" in answer) {
      delivery.reject({ condition: "amqp:invalid-field", description: answer.refused });
      return;
    }
    delivery.accept();
    this.#calls.answer(answer.requestId, answer.status, answer.body);
  }
}
