// A simulated device registering over MQTT 3.1.1 (device-api.md §6), on TLS or a WebSocket, each
// on a fresh connection: CONNECT (SAS token as password; none with X.509) → CONNACK, SUBSCRIBE `$dps/registrations/res/#` →
// SUBACK, PUBLISH QoS 1 register → PUBACK + `res/200` (`res/202` + retry-after: poll with
// `iotdps-get-operationstatus`), then DISCONNECT and close. The steps wait for each other as the
// Azure SDK's do. Raw sockets + mqtt-packet, no client library: the generator stays lean.
import mqttPacket, { type IPublishPacket, type Packet } from "mqtt-packet";
import { dial, type Endpoint } from "./dial.js";
import {
  API_VERSION,
  assignedOutcome,
  type DeviceIdentity,
  describeFailure,
  generic,
  MAX_POLLS,
  type OperationBody,
  type Outcome,
  parseOperation,
  REQUEST_TIMEOUT_MS,
  registerBody,
} from "./load-run.js";

export const RESPONSE_FILTER = "$dps/registrations/res/#";
export const REGISTER_TOPIC = "$dps/registrations/PUT/iotdps-register/";
export const STATUS_TOPIC = "$dps/registrations/GET/iotdps-get-operationstatus/";
const RESPONSE = /^\$dps\/registrations\/res\/(\d+)\/\?(.*)$/;

const SUBSCRIBE_ID = 1;
const REGISTER_ID = 2;
const DISCONNECT = mqttPacket.generate({ cmd: "disconnect" });
/** What the SDK publishes as the body of an operation-status request (device-api.md §6.2). */
const POLL_PAYLOAD = Buffer.from(" ");

/** One device's precomputed packets (the register publish uses `$rid=1`). */
export interface MqttDevice {
  registrationId: string;
  connect: Buffer;
  subscribe: Buffer;
  register: Buffer;
  /** The register body, sent again after a retryable refusal. */
  body: Buffer;
}

/** Build a device's packets ahead of timing: CONNECT, SUBSCRIBE, the register PUBLISH. */
export function prepareMqttDevice(id: DeviceIdentity): MqttDevice {
  const sr = `${id.idScope}/registrations/${id.registrationId}`;
  return {
    registrationId: id.registrationId,
    connect: mqttPacket.generate({
      cmd: "connect",
      protocolId: "MQTT",
      protocolVersion: 4,
      clean: true,
      keepalive: 60,
      clientId: id.registrationId,
      username: `${sr}/api-version=${API_VERSION}`,
      ...(id.token ? { password: Buffer.from(id.token, "utf8") } : {}),
    }),
    subscribe: SUBSCRIBE,
    register: publish(`${REGISTER_TOPIC}?$rid=1`, registerBody(id), REGISTER_ID),
    body: registerBody(id),
  };
}

const SUBSCRIBE = mqttPacket.generate({
  cmd: "subscribe",
  messageId: SUBSCRIBE_ID,
  subscriptions: [{ topic: RESPONSE_FILTER, qos: 1 }],
});

const publish = (topic: string, payload: Buffer, messageId: number): Buffer =>
  mqttPacket.generate({ cmd: "publish", topic, payload, qos: 1, messageId, dup: false, retain: false });

const describe = (status: number, body: OperationBody | undefined, payload: Buffer, step: string): string =>
  describeFailure(`${step}: res/${status}`, body, payload.toString("utf8"));

/**
 * Register one device on its own connection. Resolves to the outcome once the `assigned`
 * answer and the PUBACK of the last request are in (DISCONNECT is then written and the socket
 * ended, not awaited: as with HTTPS, closing happens after the latency stops); rejects on a
 * socket error before that.
 */
export function registerMqtt(target: Endpoint, d: MqttDevice): Promise<Outcome> {
  return new Promise<Outcome>((resolve, reject) => {
    const wire = dial(target, "mqtt");
    const socket = wire.stream;
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    let settled = false;
    let step = "CONNACK";
    let rid = 1;
    let nextMessageId = REGISTER_ID + 1;
    /** The message id of the last request whose PUBACK has not arrived yet. */
    let unacked: number | undefined;
    let assigned: Outcome | undefined;
    let polls = 0;
    let lastRequest: { kind: "register" } | { kind: "poll"; operationId: string } = { kind: "register" };
    let retryTimer: NodeJS.Timeout | undefined;

    const finish = (outcome: Outcome | Error): void => {
      if (settled) return;
      settled = true;
      if (retryTimer) clearTimeout(retryTimer);
      wire.idle(0, () => {});
      if (outcome instanceof Error) {
        socket.destroy();
        reject(outcome);
        return;
      }
      if (outcome.ok) {
        socket.end(DISCONNECT);
      } else {
        socket.destroy();
      }
      resolve(outcome);
    };
    const fail = (why: string): void => finish({ ok: false, why });
    const maybeDone = (): void => {
      if (assigned && unacked === undefined) finish(assigned);
    };
    const send = (topic: string, payload: Buffer): void => {
      const messageId = nextMessageId++;
      unacked = messageId;
      socket.write(publish(topic, payload, messageId));
    };
    /** The next request after `seconds`: a poll, or the register again after a ≥ 429 answer. */
    const later = (seconds: number, request: typeof lastRequest): void => {
      if (polls >= MAX_POLLS) {
        fail(`still not assigned after ${MAX_POLLS} polls`);
        return;
      }
      polls++;
      retryTimer = setTimeout(() => {
        retryTimer = undefined;
        rid++;
        lastRequest = request;
        if (request.kind === "register") {
          step = "res (register again)";
          send(`${REGISTER_TOPIC}?$rid=${rid}`, d.body);
        } else {
          step = "res (poll)";
          send(`${STATUS_TOPIC}?$rid=${rid}&operationId=${encodeURIComponent(request.operationId)}`, POLL_PAYLOAD);
        }
      }, seconds * 1000);
    };

    const onResponse = (p: IPublishPacket): void => {
      const m = RESPONSE.exec(p.topic);
      if (!m) return;
      const query = new URLSearchParams(m[2]);
      if (query.get("$rid") !== String(rid)) return; // not ours: the SDK ignores it too
      const status = Number(m[1]);
      const payload = typeof p.payload === "string" ? Buffer.from(p.payload) : p.payload;
      const body = parseOperation(payload.toString("utf8"));
      const what = lastRequest.kind === "register" && polls === 0 ? "register" : "poll";
      const retryAfterText = query.get("retry-after");
      const retryAfter =
        retryAfterText !== null && Number.isFinite(Number(retryAfterText)) ? Number(retryAfterText) : 2;
      if (status === 200 && body?.status === "assigned") {
        assigned = assignedOutcome(body, polls);
        maybeDone();
      } else if ((status === 200 || status === 202) && body?.status === "assigning") {
        if (typeof body.operationId !== "string") fail(describe(status, body, payload, what));
        else later(retryAfter, { kind: "poll", operationId: body.operationId });
      } else if (status >= 429) {
        later(retryAfter, lastRequest); // the SDK retries these (device-api.md §6.3)
      } else {
        fail(describe(status, body, payload, what));
      }
    };

    parser.on("packet", (p: Packet) => {
      if (settled) return;
      switch (p.cmd) {
        case "connack":
          if (p.returnCode !== 0) {
            fail(`CONNACK return code ${p.returnCode ?? "?"}`);
            return;
          }
          step = "SUBACK";
          socket.write(d.subscribe);
          return;
        case "suback":
          if (p.granted[0] === 0x80) {
            fail("SUBACK refused the response subscription");
            return;
          }
          step = "res (register)";
          unacked = REGISTER_ID;
          socket.write(d.register);
          return;
        case "puback":
          if (p.messageId === unacked) unacked = undefined;
          maybeDone();
          return;
        case "publish":
          if (p.qos > 0 && p.messageId !== undefined)
            socket.write(mqttPacket.generate({ cmd: "puback", messageId: p.messageId }));
          onResponse(p);
          return;
        default:
          return;
      }
    });
    parser.on("error", (err: Error) => fail(generic(`malformed MQTT from the server: ${err.message}`)));
    socket.on("data", (chunk: Buffer) => {
      if (!settled) parser.parse(chunk);
    });
    wire.idle(REQUEST_TIMEOUT_MS, () => fail(`no ${step} within ${REQUEST_TIMEOUT_MS} ms`));
    socket.on("error", (err) => finish(err));
    socket.on("close", () => fail(`connection closed while waiting for ${step}`));
    socket.write(d.connect);
  });
}
