// DPS over MQTT (device-api.md §6) against ONE real `provisio serve`: the register round trip as a
// baseline, CONNECT refusals, the 96 KB request limit, bad JSON, unknown topics and filters,
// operation status / PINGREQ / UNSUBSCRIBE / DISCONNECT, slow and idle clients, and a fuzzer on
// the real packet path (random bytes and mutated DPS / hub packets over reconnecting TLS).
// Set DPS_FUZZ_SEED to replay a fuzz run (the seed is printed as a diagnostic and in the test name).

import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { once } from "node:events";
import { existsSync, readdirSync } from "node:fs";
import net from "node:net";
import { after, before, describe, test } from "node:test";
import tls, { type TLSSocket } from "node:tls";
import type { IndividualEnrollment } from "azure-iot-provisioning-service/dist/interfaces.js";
import mqtt from "mqtt";
import mqttPacket, { type IConnectPacket, type IPublishPacket, type Packet } from "mqtt-packet";
import { createSasToken } from "../../../src/attestation/sas-token.js";
import { type ProvisioProcess, startProvisio } from "../../support/provisio-process.js";
import { serviceClient } from "../../support/service-client.js";
import { mutatePacket, pick, rng } from "./fuzz-support.js";
import { delay, withTimeout } from "./mqtt-support.js";

const API = "api-version=2019-03-31";
const RESPONSE_FILTER = "$dps/registrations/res/#";
const registerTopic = (rid: string) => `$dps/registrations/PUT/iotdps-register/?$rid=${rid}`;
const statusTopic = (rid: string, operationId: string) =>
  `$dps/registrations/GET/iotdps-get-operationstatus/?$rid=${rid}&operationId=${operationId}`;
const HUB_USERNAME = "hub-1.localhost/dev/?api-version=2021-04-12";

/** Every test has its own bound on top of the per-step timeouts: a hang fails instead of stalling the run. */
const TIMEOUT = { timeout: 30_000 };

let p: ProvisioProcess;
/** Enrollment primary keys by registration id. */
const keys = new Map<string, string>();
/** The operationId of the baseline registration (test 1), for a cross-device status query. */
let baselineOperationId = "";

const keyOf = (id: string): string => {
  const key = keys.get(id);
  assert.ok(key, `no enrollment key for ${id}`);
  return key;
};
const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;
const deviceToken = (id: string, key = keyOf(id), idScope = p.info.idScope, se = inAnHour()) =>
  createSasToken(key, `${idScope}/registrations/${id}`, se, "registration");
const hubToken = (deviceId: string, key = keyOf(deviceId)) =>
  createSasToken(key, `hub-1.localhost/devices/${deviceId}`, inAnHour());

// ---- packets -----------------------------------------------------------------------------------

function connectBytes(overrides: Partial<IConnectPacket>): Buffer {
  return mqttPacket.generate({
    cmd: "connect",
    protocolId: "MQTT",
    protocolVersion: 4,
    clean: true,
    clientId: "",
    keepalive: 180,
    ...overrides,
  });
}

/** A DPS CONNECT as the SDK sends it (§6.1); every field can be overridden. */
function dpsConnect(
  id: string,
  o: { clientId?: string; idScope?: string; password?: string | null; keepalive?: number } = {},
): Buffer {
  const password = o.password === undefined ? deviceToken(id) : o.password;
  return connectBytes({
    clientId: o.clientId ?? id,
    username: `${o.idScope ?? p.info.idScope}/registrations/${id}/${API}`,
    ...(password === null ? {} : { password: Buffer.from(password) }),
    keepalive: o.keepalive ?? 180,
  });
}

const publishBytes = (topic: string, payload: string | Buffer, messageId: number | undefined, qos: 0 | 1 = 1) =>
  mqttPacket.generate({ cmd: "publish", topic, payload, qos, messageId, dup: false, retain: false });

const subscribeBytes = (messageId: number, subscriptions: { topic: string; qos: 0 | 1 | 2 }[]) =>
  mqttPacket.generate({ cmd: "subscribe", messageId, subscriptions });

// ---- DPS answers -------------------------------------------------------------------------------

interface DpsAnswer {
  status: number;
  topic: string;
  query: URLSearchParams;
  body: Record<string, unknown>;
  qos: number;
}

/** A `$dps/registrations/res/{status}/?{query}` publish (§6.3); the payload must be a JSON object. */
function parseAnswer(topic: string, payload: Buffer | string, qos: number): DpsAnswer | undefined {
  const m = /^\$dps\/registrations\/res\/(\d{3})\/\?(.*)$/.exec(topic);
  if (!m?.[1]) return undefined;
  const body: unknown = JSON.parse(payload.toString());
  assert.ok(typeof body === "object" && body !== null && !Array.isArray(body), `a JSON object on ${topic}`);
  return { status: Number(m[1]), topic, query: new URLSearchParams(m[2]), body: body as Record<string, unknown>, qos };
}

function assertAssigned(a: DpsAnswer, id: string): void {
  assert.equal(a.status, 200, `final answer ${a.topic} ${JSON.stringify(a.body)}`);
  assert.equal(a.body.status, "assigned");
  assert.equal(typeof a.body.operationId, "string");
  const state = a.body.registrationState as Record<string, unknown> | undefined;
  assert.ok(state, "registrationState");
  assert.equal(state.registrationId, id);
  assert.equal(state.assignedHub, p.info.hubs[0]?.hostName);
  assert.equal(state.deviceId, id);
  assert.equal(state.status, "assigned");
}

function assertErrorBody(a: DpsAnswer, status: number, errorCode: number): void {
  assert.equal(a.status, status, `${a.topic} ${JSON.stringify(a.body)}`);
  assert.equal(a.body.errorCode, errorCode, JSON.stringify(a.body));
  assert.equal(typeof a.body.message, "string");
  // A fresh GUID on every error body, as DPS sends (issue 15.5; it was "").
  assert.match(String(a.body.trackingId), /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  assert.ok(!Number.isNaN(Date.parse(String(a.body.timestampUtc))), "timestampUtc is a date");
  assert.equal(a.query.get("retry-after"), null, "no retry-after below 429 (the SDK would retry)");
}

// ---- a raw MQTT-over-TLS client ------------------------------------------------------------------

/** A TLS socket speaking raw MQTT bytes; what the server sends is parsed into a queue and a log. */
class RawTls {
  /** Not yet consumed by next(). */
  readonly packets: Packet[] = [];
  /** Everything received, in order. */
  readonly log: Packet[] = [];
  /** The server sent bytes that are not MQTT (a server defect). */
  parseError: Error | undefined;
  readonly openedAt = Date.now();
  private readonly closedAt: Promise<number>;
  private wake: (() => void) | undefined;

  private constructor(readonly socket: TLSSocket) {
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    parser.on("packet", (pk: Packet) => {
      this.packets.push(pk);
      this.log.push(pk);
      this.wake?.();
    });
    parser.on("error", (err: Error) => {
      this.parseError ??= err;
      socket.destroy();
    });
    socket.on("data", (b: Buffer) => parser.parse(b));
    socket.on("error", () => {}); // resets after the server closes are expected here
    this.closedAt = new Promise((resolve) =>
      socket.once("close", () => {
        resolve(Date.now());
        this.wake?.();
      }),
    );
  }

  static async open(): Promise<RawTls> {
    const socket = tls.connect({ host: "127.0.0.1", port: p.info.ports.mqtt, ca: p.ca, servername: "localhost" });
    try {
      await withTimeout(once(socket, "secureConnect"), 5000, "TLS handshake");
    } catch (err) {
      socket.destroy();
      throw err;
    }
    return new RawTls(socket);
  }

  get closed(): boolean {
    return this.socket.destroyed || this.socket.closed;
  }

  write(bytes: Buffer): void {
    if (!this.closed) this.socket.write(bytes);
  }

  /** The first queued packet matching `match` (removed from the queue), or null once the socket closed. */
  async next(match: (pk: Packet) => boolean = () => true, timeoutMs = 5000): Promise<Packet | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.packets.findIndex(match);
      if (i >= 0) return this.packets.splice(i, 1)[0] ?? null;
      if (this.closed) return null;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for a packet; queued: ${this.describeQueue()}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  describeQueue(): string {
    return JSON.stringify(this.packets.map((pk) => ("topic" in pk ? `${pk.cmd} ${pk.topic}` : pk.cmd)));
  }

  /** Milliseconds from TLS connect until the server closed the socket. */
  async closedAfter(timeoutMs = 5000): Promise<number> {
    return (await withTimeout(this.closedAt, timeoutMs, "the server to close the socket")) - this.openedAt;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

async function expectConnack(c: RawTls): Promise<number> {
  const pk = await c.next();
  assert.ok(pk, "a CONNACK before the close");
  assert.equal(pk.cmd, "connack");
  return pk.cmd === "connack" ? (pk.returnCode ?? -1) : -1;
}

async function expectAck(c: RawTls, cmd: "puback" | "suback" | "unsuback", messageId: number): Promise<Packet> {
  const pk = await c.next((x) => x.cmd === cmd && x.messageId === messageId);
  assert.ok(pk, `${cmd} ${messageId} before the close (queued: ${c.describeQueue()})`);
  return pk;
}

/** A connected, subscribed raw DPS session. */
async function rawDevice(id: string): Promise<RawTls> {
  const c = await RawTls.open();
  c.write(dpsConnect(id));
  assert.equal(await expectConnack(c), 0, `CONNACK for ${id}`);
  c.write(subscribeBytes(1, [{ topic: RESPONSE_FILTER, qos: 1 }]));
  const suback = await expectAck(c, "suback", 1);
  assert.deepEqual(suback.cmd === "suback" ? suback.granted : undefined, [1]);
  return c;
}

let nextMessageId = 100;
/** QoS 1 request: PUBACK, then the answer carrying the same $rid. */
async function rawRequest(c: RawTls, topic: string, rid: string, payload: string | Buffer): Promise<DpsAnswer> {
  const messageId = nextMessageId++;
  c.write(publishBytes(topic, payload, messageId));
  await expectAck(c, "puback", messageId);
  const pk = await c.next(
    (x) => x.cmd === "publish" && new URLSearchParams(x.topic.split("?")[1] ?? "").get("$rid") === rid,
    10_000,
  );
  assert.ok(pk && pk.cmd === "publish", `an answer to ${topic} before the close`);
  const answer = parseAnswer(pk.topic, pk.payload, pk.qos);
  assert.ok(answer, `an answer topic, got ${pk.topic}`);
  return answer;
}

const rawRegister = (c: RawTls, id: string, payload?: string | Buffer) => {
  const rid = randomUUID();
  return rawRequest(c, registerTopic(rid), rid, payload ?? JSON.stringify({ registrationId: id }));
};

// ---- the mqtt v4 client --------------------------------------------------------------------------

async function dpsClient(
  id: string,
  onConnack?: (connack: mqtt.IConnackPacket) => void,
): Promise<{ client: mqtt.MqttClient; granted: number[] }> {
  const client = mqtt.connect(`mqtts://127.0.0.1:${p.info.ports.mqtt}`, {
    ca: p.ca,
    servername: "localhost",
    protocolVersion: 4,
    clean: true,
    clientId: id,
    username: `${p.info.idScope}/registrations/${id}/${API}&ClientVersion=azure-iot-provisioning-device%2F1.9.1`,
    password: deviceToken(id),
    keepalive: 180,
    reconnectPeriod: 0,
    connectTimeout: 5000,
  } as mqtt.IClientOptions); // servername goes through to tls.connect but is missing from IClientOptions
  try {
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        client.once("connect", (connack: mqtt.IConnackPacket) => {
          onConnack?.(connack);
          resolve();
        });
        client.once("error", reject);
        client.once("close", () => reject(new Error("closed before CONNACK")));
      }),
      5000,
      `CONNACK for ${id}`,
    );
    client.on("error", () => {}); // later errors surface through the assertions
    const granted = await new Promise<number[]>((resolve, reject) =>
      client.subscribe(RESPONSE_FILTER, { qos: 1 }, (err, g) => (err ? reject(err) : resolve(g.map((x) => x.qos)))),
    );
    return { client, granted };
  } catch (err) {
    client.end(true);
    throw err;
  }
}

const endClient = (client: mqtt.MqttClient): Promise<void> =>
  new Promise((resolve) => client.end(false, {}, () => resolve()));

async function clientRequest(client: mqtt.MqttClient, topic: string, rid: string, payload: string): Promise<DpsAnswer> {
  let onMessage: ((t: string, m: Buffer, pk: IPublishPacket) => void) | undefined;
  const answer = new Promise<DpsAnswer>((resolve, reject) => {
    onMessage = (t, m, pk) => {
      if (new URLSearchParams(t.split("?")[1] ?? "").get("$rid") !== rid) return;
      try {
        const a = parseAnswer(t, m, pk.qos);
        if (a) resolve(a);
        else reject(new Error(`not an answer topic: ${t}`));
      } catch (err) {
        reject(err);
      }
    };
    client.on("message", onMessage);
  });
  try {
    await new Promise<void>((resolve, reject) =>
      client.publish(topic, payload, { qos: 1 }, (err) => (err ? reject(err) : resolve())),
    );
    return await withTimeout(answer, 10_000, `the answer to ${topic}`);
  } finally {
    if (onMessage) client.removeListener("message", onMessage);
  }
}

/** Register, then poll while "assigning" (202) as the SDK does; resolves with the first and the final answer. */
async function clientRegister(client: mqtt.MqttClient, id: string): Promise<{ first: DpsAnswer; final: DpsAnswer }> {
  const rid = randomUUID();
  const body = JSON.stringify({ registrationId: id, payload: { modelId: "dtmi:test;1" } });
  const first = await clientRequest(client, registerTopic(rid), rid, body);
  let a = first;
  for (let i = 0; a.status === 202 && i < 20; i++) {
    await delay(Number(a.query.get("retry-after") ?? 1) * 1000);
    const pollRid = randomUUID();
    a = await clientRequest(client, statusTopic(pollRid, String(a.body.operationId)), pollRid, " ");
  }
  return { first, final: a };
}

/** A device that connects, registers and leaves: proof that the server still serves. */
async function registersNormally(id: string): Promise<string> {
  const { client, granted } = await dpsClient(id);
  try {
    assert.deepEqual(granted, [1]);
    const { final } = await clientRegister(client, id);
    assertAssigned(final, id);
    return String(final.body.operationId);
  } finally {
    await endClient(client);
  }
}

/** Open file descriptors of the server process (Linux), to catch connections it never closes. */
function serverFds(): number | undefined {
  const dir = `/proc/${p.child.pid}/fd`;
  return existsSync(dir) ? readdirSync(dir).length : undefined;
}

/** Topic names a server must never send (MQTT-3.3.2-2 wildcards, MQTT-1.5.3-2 U+0000). */
const badTopicName = (topic: string): boolean => /[#+]/.test(topic) || topic.includes("\u0000");

// ---- fuzzing ---------------------------------------------------------------------------------------

/** Characters that matter to the topic and JSON grammars, some that need several UTF-8 bytes, and escapes. */
const SPICE = [...Array.from('?&=$/#+%é漢😀"{}[],:\\'), "%zz", "%", "%23", "%2B", "%00", "%26", "\u0000"];

/** Edits at the character level, so that the result is still valid UTF-8 (and still framed correctly). */
function mutateText(r: () => number, text: string): string {
  let s = text;
  for (let ops = 1 + Math.floor(r() * 3); ops > 0; ops--) {
    const at = Math.floor(r() * (s.length + 1));
    const tail = [
      () => pick(r, SPICE) + s.slice(at), // insert a special character
      () => s.slice(at + 1 + Math.floor(r() * 6)), // delete
      () => s.slice(Math.floor(r() * s.length)), // splice with itself
      () => "x".repeat(Math.floor(r() * 2000)) + s.slice(at), // grow
      () => "", // truncate
    ];
    s = s.slice(0, at) + pick(r, tail)();
  }
  return s;
}

/** A JSON document of odd shape: deep, wide, huge numbers, prototype-looking keys. */
function oddJson(r: () => number, depth = 0): unknown {
  const k = Math.floor(r() * 9);
  if (depth > 6 || k === 0) return pick(r, [null, true, 0, -1e308, 2 ** 53 + 1, "", "ü", "x".repeat(500)]);
  if (k === 1) return Array.from({ length: Math.floor(r() * 5) }, () => oddJson(r, depth + 1));
  const o: Record<string, unknown> = {};
  for (let i = Math.floor(r() * 5); i > 0; i--) {
    const key = pick(r, ["__proto__", "constructor", "toString", "registrationId", "payload", "tpm", "a"]);
    // defineProperty: a plain assignment to "__proto__" would set the prototype instead of a key.
    Object.defineProperty(o, key, {
      value: oddJson(r, depth + 1),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return o;
}

describe("DPS over MQTT: robustness of a real provisio serve", { concurrency: true }, () => {
  before(async () => {
    p = await startProvisio();
    const svc = serviceClient(p);
    const ids = [
      "rb-base",
      "rb-refused",
      "rb-big",
      "rb-bystander",
      "rb-badjson",
      "rb-topics",
      "rb-ops",
      "rb-meanwhile",
      "rb-keepalive",
      "fuzz-dps",
      "dev",
      "rb-after-fuzz",
    ];
    await Promise.all(
      ids.map(async (registrationId) => {
        const created = await svc.createOrUpdateIndividualEnrollment({
          registrationId,
          attestation: { type: "symmetricKey" },
        } as IndividualEnrollment);
        const key = created.responseBody.attestation.symmetricKey?.primaryKey;
        assert.ok(key, `a key for ${registrationId}`);
        keys.set(registrationId, key);
      }),
    );
  });
  after(async () => {
    await p?.dispose();
  });

  // ---- 7: runs alongside everything else ----------------------------------------------------------
  test(
    "slow clients: idle TLS, half a CONNECT, raw TCP and keep-alive expiry are closed by the server; a device registers meanwhile",
    TIMEOUT,
    async () => {
      const idle = await RawTls.open();
      const half = await RawTls.open();
      const connect = dpsConnect("rb-meanwhile");
      half.write(connect.subarray(0, Math.floor(connect.length / 2)));
      // No TLS handshake at all: the handshake timeout (= connect deadline) must end it.
      const tcp = net.connect({ host: "127.0.0.1", port: p.info.ports.mqtt });
      tcp.on("error", () => {});
      await once(tcp, "connect");
      const tcpOpened = Date.now();
      const tcpClosed = new Promise<number>((resolve) => tcp.once("close", () => resolve(Date.now() - tcpOpened)));
      // CONNECT with keep-alive 1 s and then silence: closed after 1.5 x keep-alive.
      const quiet = await RawTls.open();
      quiet.write(dpsConnect("rb-keepalive", { keepalive: 1 }));
      try {
        assert.equal(await expectConnack(quiet), 0);
        await registersNormally("rb-meanwhile");
        assert.ok(!idle.closed && !half.closed, "slow clients are still connected while the device registers");

        const quietMs = await quiet.closedAfter(5000);
        assert.ok(quietMs >= 1000 && quietMs < 4000, `keep-alive expiry after ${quietMs} ms`);
        const [idleMs, halfMs, tcpMs] = await Promise.all([
          idle.closedAfter(15_000),
          half.closedAfter(15_000),
          withTimeout(tcpClosed, 15_000, "the server to close the raw TCP socket"),
        ]);
        for (const [what, ms] of [
          ["idle TLS", idleMs],
          ["half CONNECT", halfMs],
          ["raw TCP", tcpMs],
        ] as const) {
          assert.ok(ms >= 8_000 && ms <= 15_000, `${what} closed after ${ms} ms (connect deadline 10 s)`);
        }
        assert.deepEqual(idle.log, [], "nothing sent to the idle client");
        assert.deepEqual(half.log, [], "no CONNACK for half a CONNECT");
      } finally {
        for (const c of [idle, half, quiet]) c.destroy();
        tcp.destroy();
      }
    },
  );

  describe("sequential", { concurrency: false }, () => {
    // ---- 1 ------------------------------------------------------------------------------------------
    test(
      "baseline: a device registers with the mqtt client (CONNACK 0, SUBACK 1, PUBACK, res/200 assigned)",
      TIMEOUT,
      async () => {
        let connack: mqtt.IConnackPacket | undefined;
        const { client, granted } = await dpsClient("rb-base", (c) => {
          connack = c;
        });
        try {
          assert.equal(connack?.returnCode, 0);
          assert.equal(connack?.sessionPresent, false);
          assert.deepEqual(granted, [1], "$dps/registrations/res/# granted QoS 1");
          const { first, final } = await clientRegister(client, "rb-base");
          assert.ok(first.status === 200 || first.status === 202, `first answer ${first.topic}`);
          if (first.status === 202) assert.match(first.query.get("retry-after") ?? "", /^\d+$/);
          assertAssigned(final, "rb-base");
          assert.match(final.topic, /^\$dps\/registrations\/res\/200\/\?\$rid=[0-9a-f-]{36}$/, "no retry-after on 200");
          baselineOperationId = String(final.body.operationId);
          await new Promise<void>((resolve, reject) =>
            client.unsubscribe(RESPONSE_FILTER, (err?: Error) => (err ? reject(err) : resolve())),
          );
        } finally {
          await endClient(client);
        }
      },
    );

    // ---- 2 ------------------------------------------------------------------------------------------
    test(
      "refusals: CONNECT is accepted and each register is answered with why (401, 404, 400); a malformed identity gets CONNACK 2",
      TIMEOUT,
      async () => {
        const id = "rb-refused";
        const otherKey = randomBytes(32).toString("base64");
        // DPS answers `$dps/registrations/res/401/?$rid=…` with 401002 after a successful CONNECT
        // (issue 15.7): the device learns why, which a CONNACK 5 cannot say.
        const answered: [string, Buffer, number, number, RegExp][] = [
          ["wrong key", dpsConnect(id, { password: deviceToken(id, otherKey) }), 401, 401002, /signature/],
          [
            "expired token",
            dpsConnect(id, { password: deviceToken(id, keyOf(id), p.info.idScope, 1_000_000) }),
            401,
            401002,
            /expired/,
          ],
          ["not a SAS token", dpsConnect(id, { password: "hunter2" }), 401, 401002, /SharedAccessSignature/],
          [
            "no password and no client certificate",
            dpsConnect(id, { password: null }),
            401,
            401002,
            /neither a SharedAccessSignature nor a client certificate/,
          ],
          [
            "token for another registration",
            dpsConnect(id, { password: deviceToken("rb-base", keyOf(id)) }),
            401,
            401002,
            /must be for/,
          ],
          [
            "no such enrollment",
            dpsConnect("rb-nobody", { password: deviceToken("rb-nobody", otherKey) }),
            401,
            401002,
            /no enrollment matches/,
          ],
          ["unknown ID scope", dpsConnect(id, { idScope: "0ne00000000" }), 404, 404301, /0ne00000000/],
          [
            "invalid registration id",
            dpsConnect("bad*id", { password: deviceToken("bad*id", otherKey) }),
            400,
            400006,
            /Registration id 'bad\*id' is invalid/,
          ],
        ];
        await Promise.all(
          answered.map(async ([what, bytes, status, errorCode, message]) => {
            const c = await RawTls.open();
            try {
              c.write(bytes);
              assert.equal(await expectConnack(c), 0, what);
              c.write(subscribeBytes(1, [{ topic: RESPONSE_FILTER, qos: 1 }]));
              await expectAck(c, "suback", 1);
              const registrationId =
                what === "no such enrollment" ? "rb-nobody" : what.startsWith("invalid") ? "bad*id" : id;
              for (let attempt = 0; attempt < 2; attempt++) {
                const a = await rawRegister(c, registrationId);
                assertErrorBody(a, status, errorCode);
                assert.match(String(a.body.message), message, what);
              }
            } finally {
              c.destroy();
            }
          }),
        );
        const refused: [string, Buffer][] = [
          ["clientId is not the registration id", dpsConnect(id, { clientId: "someone-else" })],
          ["empty clientId", dpsConnect(id, { clientId: "" })],
          [
            "username without a registration id",
            connectBytes({ clientId: id, username: `${p.info.idScope}/registrations/`, password: Buffer.from("x") }),
          ],
        ];
        await Promise.all(
          refused.map(async ([what, bytes]) => {
            const c = await RawTls.open();
            try {
              c.write(bytes);
              // Something queued behind the CONNECT must not be processed (MQTT-3.1.4-5).
              c.write(subscribeBytes(9, [{ topic: RESPONSE_FILTER, qos: 1 }]));
              assert.equal(await expectConnack(c), 2, what);
              const ms = await c.closedAfter(3000);
              assert.ok(ms < 3000, `${what}: closed after ${ms} ms`);
              assert.deepEqual(
                c.log.map((x) => x.cmd),
                ["connack"],
                `${what}: nothing but the CONNACK`,
              );
            } finally {
              c.destroy();
            }
          }),
        );
        await registersNormally("rb-refused"); // the right credentials still work
      },
    );

    // ---- 3 ------------------------------------------------------------------------------------------
    test(
      "a register payload over 96 KB closes that session; exactly 96 KB is answered; another device is unaffected",
      TIMEOUT,
      async () => {
        const { client: bystander } = await dpsClient("rb-bystander");
        const big = await rawDevice("rb-big");
        try {
          const exactly = (n: number) => {
            const head = '{"registrationId":"rb-big","payload":{"pad":"';
            const tail = '"}}';
            return Buffer.from(head + "x".repeat(n - head.length - tail.length) + tail);
          };
          // At the limit: an ordinary request.
          const atLimit = await rawRegister(big, "rb-big", exactly(96 * 1024));
          assertAssigned(atLimit, "rb-big");

          // One byte over: PUBACK (the server always acknowledges), no answer, the session closes.
          const rid = randomUUID();
          big.write(publishBytes(registerTopic(rid), exactly(96 * 1024 + 1), 7));
          await expectAck(big, "puback", 7);
          const ms = await big.closedAfter(5000);
          assert.ok(big.closed, `closed after ${ms} ms`);
          assert.equal(
            big.log.filter((x) => x.cmd === "publish" && x.topic.includes(rid)).length,
            0,
            "no answer to the oversized request",
          );

          // Above the listener's packet limit (~260 KB): closed without even a PUBACK.
          const huge = await rawDevice("rb-big");
          try {
            huge.write(publishBytes(registerTopic(randomUUID()), Buffer.alloc(300 * 1024, 0x20), 8));
            await huge.closedAfter(5000);
            assert.equal(huge.log.filter((x) => x.cmd === "puback" || x.cmd === "publish").length, 0);
          } finally {
            huge.destroy();
          }

          assertAssigned((await clientRegister(bystander, "rb-bystander")).final, "rb-bystander");
        } finally {
          big.destroy();
          await endClient(bystander);
        }
      },
    );

    // ---- 4 ------------------------------------------------------------------------------------------
    test(
      "bad register payloads get res/400 with a JSON error body and the connection stays usable",
      TIMEOUT,
      async () => {
        const c = await rawDevice("rb-badjson");
        try {
          const deep = `${"[".repeat(40)}${"]".repeat(40)}`;
          const cases: [string, string | Buffer, number][] = [
            ["not JSON", "this is {not json", 400001],
            ["truncated JSON", '{"registrationId":"rb-badjson"', 400001],
            ["invalid UTF-8 bytes", Buffer.from([0xff, 0xfe, 0x7b, 0x00, 0xc3]), 400001],
            ["nested 40 deep", `{"registrationId":"rb-badjson","payload":{"a":${deep}}}`, 400001],
            ["a JSON array", "[1,2,3]", 400004],
            ["a JSON string", '"rb-badjson"', 400004],
            ["another registration id", '{"registrationId":"rb-base"}', 400302],
            ["payload not an object", '{"registrationId":"rb-badjson","payload":5}', 400303],
          ];
          for (const [what, payload, errorCode] of cases) {
            const a = await rawRegister(c, "rb-badjson", payload);
            assert.equal(a.status, 400, what);
            assertErrorBody(a, 400, errorCode);
            assert.ok(!c.closed, `${what}: the connection stays open`);
          }
          // Same connection, now a good request.
          assertAssigned(await rawRegister(c, "rb-badjson"), "rb-badjson");
          assert.equal(p.child.exitCode, null);
        } finally {
          c.destroy();
        }
      },
    );

    // ---- 5 ------------------------------------------------------------------------------------------
    test("unknown topics are PUBACKed and not answered; SUBSCRIBE to other filters gets 0x80", TIMEOUT, async () => {
      const c = await rawDevice("rb-topics");
      try {
        c.write(
          subscribeBytes(2, [
            { topic: RESPONSE_FILTER, qos: 2 },
            { topic: "devices/rb-topics/messages/devicebound/#", qos: 1 },
            { topic: "$dps/registrations/res/200/#", qos: 0 },
            { topic: "#", qos: 1 },
            { topic: RESPONSE_FILTER, qos: 0 },
          ]),
        );
        const suback = await expectAck(c, "suback", 2);
        assert.deepEqual(suback.cmd === "suback" ? suback.granted : undefined, [1, 0x80, 0x80, 0x80, 0]);

        const unknown = [
          "devices/rb-topics/messages/events/",
          "$dps/registrations/PUT/iotdps-register/",
          "$dps/registrations/PUT/iotdps-register/?foo=1",
          "$dps/registrations/PUT/iotdps-register/?$rid=",
          "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=5",
          "$dps/registrations/PUT/iotdps-something-else/?$rid=6",
          "$dps/registrations/res/200/?$rid=7",
          "$iothub/twin/GET/?$rid=8",
          "$DPS/REGISTRATIONS/PUT/IOTDPS-REGISTER/?$rid=9",
        ];
        for (const [i, topic] of unknown.entries()) {
          c.write(publishBytes(topic, '{"registrationId":"rb-topics"}', 300 + i));
          await expectAck(c, "puback", 300 + i);
        }
        c.write(publishBytes("some/other/topic", "qos0", undefined, 0));
        await delay(500);
        c.write(mqttPacket.generate({ cmd: "pingreq" }));
        const pong = await c.next();
        assert.equal(
          pong?.cmd,
          "pingresp",
          `nothing but PINGRESP after the unknown topics (queued ${c.describeQueue()})`,
        );
        assert.ok(!c.closed, "still connected");
        assertAssigned(await rawRegister(c, "rb-topics"), "rb-topics");
      } finally {
        c.destroy();
      }
    });

    // ---- 6 ------------------------------------------------------------------------------------------
    test(
      "operation status (unknown → res/404, own → res/200, another device's → res/404), PINGREQ, UNSUBSCRIBE, DISCONNECT",
      TIMEOUT,
      async () => {
        const c = await rawDevice("rb-ops");
        try {
          let rid = randomUUID();
          const unknown = await rawRequest(c, statusTopic(rid, "4.0123456789abcdef.nonexistent"), rid, " ");
          assertErrorBody(unknown, 404, 404302);
          assert.equal(unknown.topic, `$dps/registrations/res/404/?$rid=${rid}`);

          const registered = await rawRegister(c, "rb-ops");
          assertAssigned(registered, "rb-ops");
          rid = randomUUID();
          const own = await rawRequest(c, statusTopic(rid, String(registered.body.operationId)), rid, " ");
          assertAssigned(own, "rb-ops");
          assert.equal(own.body.operationId, registered.body.operationId);

          assert.ok(baselineOperationId, "the baseline test ran first");
          rid = randomUUID();
          assertErrorBody(await rawRequest(c, statusTopic(rid, baselineOperationId), rid, " "), 404, 404302);

          c.write(mqttPacket.generate({ cmd: "pingreq" }));
          assert.equal((await c.next((x) => x.cmd === "pingresp"))?.cmd, "pingresp");
          c.write(mqttPacket.generate({ cmd: "unsubscribe", messageId: 77, unsubscriptions: [RESPONSE_FILTER] }));
          await expectAck(c, "unsuback", 77);
          c.write(mqttPacket.generate({ cmd: "disconnect" }));
          const ms = await c.closedAfter(3000);
          assert.ok(c.closed, `closed by the server ${ms} ms after connecting`);
          assert.deepEqual(c.packets, [], "nothing after the UNSUBACK");
        } finally {
          c.destroy();
        }
      },
    );

    // ---- 8 ------------------------------------------------------------------------------------------
    const SEED = Number(process.env.DPS_FUZZ_SEED ?? Date.now() % 2 ** 31);
    test(`fuzz the real packet path: random and mutated DPS/hub packets over TLS (seed ${SEED}, replay with DPS_FUZZ_SEED)`, {
      timeout: 60_000,
    }, async (t) => {
      t.diagnostic(`DPS_FUZZ_SEED=${SEED}`);
      // "dev" must exist in hub-1 for the hub CONNECT to authenticate: provision it first.
      await registersNormally("dev");
      const fuzzOperationId = await registersNormally("fuzz-dps");
      const dpsConnectValid = dpsConnect("fuzz-dps", { keepalive: 30 });
      const hubConnectValid = connectBytes({
        clientId: "dev",
        username: HUB_USERNAME,
        password: Buffer.from(hubToken("dev")),
        keepalive: 30,
      });
      // The seeds themselves are accepted: mutations start from packets that reach the sessions.
      for (const bytes of [dpsConnectValid, hubConnectValid]) {
        const c = await RawTls.open();
        c.write(bytes);
        assert.equal(await expectConnack(c), 0);
        c.destroy();
      }
      const CONNECTS = [
        dpsConnectValid,
        hubConnectValid,
        dpsConnect("fuzz-dps", { password: deviceToken("fuzz-dps", randomBytes(32).toString("base64")) }),
        dpsConnect("fuzz-dps", { password: null }),
      ];
      const VALID: Buffer[] = [
        ...CONNECTS,
        subscribeBytes(11, [{ topic: RESPONSE_FILTER, qos: 1 }]),
        publishBytes(registerTopic("f1"), '{"registrationId":"fuzz-dps","payload":{"k":[1,{"x":null}]}}', 12),
        publishBytes(statusTopic("f2", "4.0123456789abcdef.00000000-0000-4000-8000-000000000000"), " ", 13),
        publishBytes("devices/dev/messages/events/a=1&b=2", '{"t":21.5}', 14),
        publishBytes("$iothub/twin/GET/?$rid=f3", "", 15),
        publishBytes("$iothub/twin/PATCH/properties/reported/?$rid=f4", '{"fw":"1.0"}', 16),
        subscribeBytes(17, [
          { topic: "devices/dev/messages/devicebound/#", qos: 1 },
          { topic: "$iothub/twin/res/#", qos: 0 },
          { topic: "$iothub/twin/PATCH/properties/desired/#", qos: 1 },
        ]),
        mqttPacket.generate({ cmd: "unsubscribe", messageId: 18, unsubscriptions: [RESPONSE_FILTER] }),
        mqttPacket.generate({ cmd: "puback", messageId: 1 }),
        mqttPacket.generate({ cmd: "pingreq" }),
      ];
      /** A well-framed PUBLISH/SUBSCRIBE whose topic and payload are mutated: gets past framing into the sessions. */
      const structured = (r: () => number): Buffer => {
        const opId = fuzzOperationId;
        const topics = [
          registerTopic(`r${Math.floor(r() * 1e9)}`),
          statusTopic("s1", opId),
          statusTopic("s2", "4.0123456789abcdef.00000000-0000-4000-8000-000000000000"),
          `$dps/registrations/GET/iotdps-get-operationstatus/?operationId=${opId}&$rid=s3&$rid=s4`,
          "devices/dev/messages/events/%24.ct=application%2Fjson&a=%zz",
          "$iothub/twin/GET/?$rid=t1",
          "$iothub/twin/PATCH/properties/reported/?$rid=t2",
        ];
        const payloads = [
          JSON.stringify({ registrationId: "fuzz-dps", payload: { modelId: "dtmi:x;1" } }),
          JSON.stringify({ registrationId: "fuzz-dps", payload: oddJson(r) }),
          JSON.stringify(oddJson(r)),
          '{"registrationId":"fuzz-dps","payload":{"n":1e400,"m":-0,"s":"\\ud800"}}',
          " ",
          "",
        ];
        const topic = r() < 0.6 ? pick(r, topics) : mutateText(r, pick(r, topics));
        const payload = r() < 0.3 ? pick(r, payloads) : mutateText(r, pick(r, payloads));
        try {
          if (r() < 0.15) {
            return subscribeBytes(1 + Math.floor(r() * 65_535), [
              { topic: mutateText(r, RESPONSE_FILTER), qos: pick(r, [0, 1, 2] as const) },
            ]);
          }
          if (!topic) return mqttPacket.generate({ cmd: "pingreq" });
          return publishBytes(topic, payload, 1 + Math.floor(r() * 65_535), r() < 0.8 ? 1 : 0);
        } catch {
          return mqttPacket.generate({ cmd: "pingreq" }); // mqtt-packet refused to encode it
        }
      };
      const fuzzInput = (r: () => number, sessionOpen: boolean): Buffer => {
        if (sessionOpen && r() < 0.85) return structured(r);
        if (r() < 0.2) {
          const length = r() < 0.9 ? 1 + Math.floor(r() * 64) : 1 + Math.floor(r() * 4096);
          return Buffer.from(Array.from({ length }, () => Math.floor(r() * 256)));
        }
        return mutatePacket(r, pick(r, VALID), VALID);
      };

      const fdsBefore = serverFds();
      const MAX_INPUTS = 3000;
      const deadline = Date.now() + 25_000;
      const violations: string[] = [];
      const connacks = new Map<number, number>();
      let sent = 0;
      let connections = 0;
      /** Server PUBLISH topic names with wildcards or U+0000 (must stay empty; see the $rid regression test). */
      const badTopics = new Map<string, number>();
      /** DPS answers received, by status. */
      const answered = new Map<number, number>();
      /** The last inputs per connection, to show what killed the server if it dies. */
      const recent: { index: number; inputs: string[] }[] = [];

      const runConnection = async (index: number) => {
        // Each connection's inputs come from its own stream: a seed replays the same bytes per connection.
        const r = rng((SEED ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
        const c = await RawTls.open();
        const inputs: string[] = [];
        recent.push({ index, inputs });
        if (recent.length > 8) recent.shift();
        try {
          const connect = r() < 0.7 ? pick(r, CONNECTS) : undefined;
          if (connect) c.write(connect);
          const sessionOpen = connect === dpsConnectValid || connect === hubConnectValid;
          for (let n = 0; n < 40 && !c.closed && sent < MAX_INPUTS && Date.now() < deadline; n++) {
            const input = fuzzInput(r, sessionOpen);
            inputs.push(input.toString("hex"));
            sent++;
            if (r() < 0.1 && input.length > 1) {
              // Dribble it in pieces: the partial-packet path.
              for (let at = 0; at < input.length && !c.closed; ) {
                const step = 1 + Math.floor(r() * 16);
                c.write(input.subarray(at, at + step));
                at += step;
                await new Promise((resolve) => setImmediate(resolve));
              }
            } else {
              c.write(input);
            }
            await new Promise((resolve) => setImmediate(resolve));
            if (n % 8 === 7) await delay(1); // let the server's answers (or close) come back
          }
          await delay(sessionOpen ? 100 : r() < 0.2 ? 50 : 2); // sessions: give the engine time to answer
        } finally {
          c.destroy();
        }
        // What came back must be well-formed MQTT, CONNACK first, nothing after a refusal.
        if (c.parseError) violations.push(`#${index}: server sent bytes that are not MQTT: ${c.parseError.message}`);
        const first = c.log[0];
        if (first && first.cmd !== "connack")
          violations.push(`#${index}: first packet from the server was ${first.cmd}`);
        for (const [i, pk] of c.log.entries()) {
          if (pk.cmd === "connack") {
            const code = pk.returnCode ?? -1;
            connacks.set(code, (connacks.get(code) ?? 0) + 1);
            if (i > 0) violations.push(`#${index}: a second CONNACK`);
            if (code < 0 || code > 5) violations.push(`#${index}: CONNACK return code ${code}`);
            if (code !== 0 && c.log.length > 1) violations.push(`#${index}: packets after CONNACK ${code}`);
          }
          if (pk.cmd === "publish" && badTopicName(pk.topic)) {
            const kind = pk.topic.split("?")[0] ?? "";
            badTopics.set(kind, (badTopics.get(kind) ?? 0) + 1);
          }
          if (pk.cmd === "publish" && pk.topic.startsWith("$dps/")) {
            try {
              const a = parseAnswer(pk.topic, pk.payload, pk.qos);
              if (a) answered.set(a.status, (answered.get(a.status) ?? 0) + 1);
              else violations.push(`#${index}: server published on ${pk.topic}`);
            } catch (err) {
              violations.push(`#${index}: bad DPS answer ${pk.topic}: ${(err as Error).message}`);
            }
          }
        }
      };

      const worker = async () => {
        while (sent < MAX_INPUTS && Date.now() < deadline && p.child.exitCode === null) {
          try {
            await runConnection(connections++);
          } catch (err) {
            if (p.child.exitCode !== null) return; // reported below, with the last inputs
            throw err;
          }
        }
      };
      const started = Date.now();
      await Promise.all([worker(), worker(), worker(), worker()]);
      const elapsed = Date.now() - started;
      t.diagnostic(
        `${sent} inputs over ${connections} TLS connections in ${elapsed} ms; CONNACK codes ${JSON.stringify([...connacks])}; DPS answers by status ${JSON.stringify([...answered])}; topic names with # + or U+0000 ${JSON.stringify([...badTopics])}`,
      );

      await delay(200);
      assert.equal(
        p.child.exitCode,
        null,
        `the server died (seed ${SEED}); last inputs: ${JSON.stringify(recent)}\n${p.stderr()}`,
      );
      assert.equal(p.child.signalCode, null);
      assert.deepEqual(violations.slice(0, 20), [], `protocol violations (seed ${SEED})`);
      assert.deepEqual([...badTopics], [], `answer topics with # + or U+0000 (seed ${SEED})`);
      assert.ok(sent >= 500, `only ${sent} inputs in the time budget`);

      // Every connection the fuzzer opened is gone on the server side too (close grace is 2 s).
      if (fdsBefore !== undefined) {
        let fds = serverFds() ?? 0;
        for (let i = 0; i < 50 && fds > fdsBefore + 2; i++) {
          await delay(100);
          fds = serverFds() ?? 0;
        }
        t.diagnostic(`server file descriptors: ${fdsBefore} before the fuzz, ${fds} after`);
        assert.ok(fds <= fdsBefore + 2, `the server holds ${fds} file descriptors, ${fdsBefore} before the fuzz`);
      }

      // Still serving: a DPS device registers and the hub device connects.
      await registersNormally("rb-after-fuzz");
      const hub = await RawTls.open();
      try {
        hub.write(hubConnectValid);
        assert.equal(await expectConnack(hub), 0);
      } finally {
        hub.destroy();
      }
    });

    test(
      "a percent-encoded $rid never puts '#', '+', U+0000 or a stray '&' into an answer topic",
      TIMEOUT,
      async () => {
        // Regression: the server used to decode $rid and write it back raw into the answer topic.
        const c = await rawDevice("rb-ops");
        try {
          for (const raw of ["a%23b", "c%2Bd", "g%00h", "i%26j%3Dk"]) {
            const rid = new URLSearchParams(`$rid=${raw}`).get("$rid") ?? "";
            const a = await rawRequest(c, registerTopic(raw), rid, JSON.stringify({ registrationId: "rb-ops" }));
            assert.ok(!badTopicName(a.topic), `answer topic ${JSON.stringify(a.topic)}`);
            assert.deepEqual(a.query.getAll("$rid"), [rid], `$rid in ${JSON.stringify(a.topic)}`);
          }
        } finally {
          c.destroy();
        }
      },
    );
  });
});
