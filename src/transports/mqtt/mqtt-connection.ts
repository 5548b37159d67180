// One MQTT 3.1.1 connection over any Duplex (a TLSSocket, or a WebSocket stream): framing,
// the CONNECT handshake deadline, keep-alive, PINGREQ, size limits and protocol violations.
// The session logic (DPS registration, built-in hub) is not here: it receives the connection
// in an MqttHandler after a well-formed CONNECT and answers with connack().
//
// Life cycle:
//   awaiting CONNECT  -> first packet must be CONNECT, before connectTimeoutMs counted from accept
//   awaiting CONNACK  -> the handler runs; the stream is paused and up to 100 packets that
//                        arrived behind the CONNECT are held (MQTT-3.1.4-5: nothing is processed
//                        before the server accepts); the same deadline still applies to the handler
//   open              -> publish/subscribe/unsubscribe/puback are surfaced as events
//   closed            -> "close" is emitted exactly once; writes are ignored

import { EventEmitter } from "node:events";
import type { Duplex } from "node:stream";
import mqttPacket, {
  type IConnectPacket,
  type IPubackPacket,
  type IPublishPacket,
  type ISubscribePacket,
  type IUnsubscribePacket,
  type Packet,
  type Parser,
} from "mqtt-packet";
import { CONNACK } from "./connack.js";

export interface MqttLimits {
  /** Largest packet accepted, fixed header included; bytes buffered for one packet beyond this close the connection. */
  maxPacketBytes: number;
  /** From accept: the CONNECT must arrive and the handler must answer it (connack) within this time. */
  connectTimeoutMs: number;
}

export const DEFAULT_LIMITS: MqttLimits = { maxPacketBytes: 256 * 1024, connectTimeoutMs: 10_000 };

export interface PeerInfo {
  remoteAddress: string;
  /** DER certificates the client presented, leaf first (empty if none). */
  readonly certificateChain: Buffer[];
  /** The first of them alone, which costs less to read (security/tls-peer.ts). */
  readonly leafCertificate: Buffer | undefined;
  /** SNI host name, if any (TLS) or the Host header (WebSocket). */
  serverName?: string;
}

/**
 * Called once per connection with a well-formed CONNECT (protocol level 3 or 4). The handler must
 * attach its listeners and then call `conn.connack(0)` to accept, or `conn.connack(code)` with a
 * non-zero code to refuse; it may do so asynchronously, before `connectTimeoutMs` from accept.
 */
export type MqttHandler = (conn: MqttConnection, connect: IConnectPacket) => void;

/** A message the server sends to the client. */
export interface OutgoingPublish {
  topic: string;
  payload: Buffer | string;
  qos: 0 | 1;
  /** 1..65535; assigned from the connection's counter for QoS 1 when absent. */
  messageId?: number;
  /** Set on a QoS 1 redelivery. */
  dup?: boolean;
}

export interface MqttConnectionEvents {
  publish: [packet: IPublishPacket];
  subscribe: [packet: ISubscribePacket];
  unsubscribe: [packet: IUnsubscribePacket];
  puback: [packet: IPubackPacket];
  close: [reason: string];
}

const AWAIT_CONNECT = 0;
const AWAIT_CONNACK = 1;
const OPEN = 2;
/** CONNACK refusal sent; closing at the next microtask. */
const REFUSED = 3;
const CLOSED = 4;
type State = typeof AWAIT_CONNECT | typeof AWAIT_CONNACK | typeof OPEN | typeof REFUSED | typeof CLOSED;

/** After close (end), how long the peer gets to close its side before the stream is destroyed. */
const CLOSE_GRACE_MS = 2_000;
const PINGRESP = Buffer.from([0xd0, 0x00]);
/** Unsent output past which a connection stops being read until it drains. */
const MAX_PENDING_WRITE_BYTES = 1024 * 1024;
/** Packets a client may pipeline behind its CONNECT before the handler answers. */
const MAX_HELD_PACKETS = 100;

/** The parser's packet in progress (not in mqtt-packet's typings): for the early size check and CONNACK 1. */
interface ParserInternals {
  packet?: { cmd?: string | null; length?: number; protocolVersion?: number };
}

/** Bytes of a fixed header (type byte + variable-length "remaining length"). */
function fixedHeaderBytes(remaining: number): number {
  return remaining < 128 ? 2 : remaining < 16_384 ? 3 : remaining < 2_097_152 ? 4 : 5;
}

function isMessageId(id: number | undefined): id is number {
  return id !== undefined && Number.isInteger(id) && id >= 1 && id <= 65_535;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class MqttConnection extends EventEmitter<MqttConnectionEvents> {
  readonly peer: PeerInfo;
  /** From the CONNECT ("" until then). */
  clientId = "";
  /** Seconds, from the CONNECT (0 = no keep-alive). */
  keepalive = 0;
  /** Why the connection closed, once it has. */
  closeReason: string | undefined;

  private state: State = AWAIT_CONNECT;
  private readonly stream: Duplex;
  private readonly parser: Parser;
  private readonly limits: MqttLimits;
  private readonly onConnect: MqttHandler;
  private connectTimer: NodeJS.Timeout | undefined;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private killTimer: NodeJS.Timeout | undefined;
  /** Packets that arrived behind the CONNECT, replayed once the handler accepts. */
  private held: Packet[] | undefined;
  private nextMessageId = 0;

  constructor(stream: Duplex, peer: PeerInfo, onConnect: MqttHandler, limits: MqttLimits = DEFAULT_LIMITS) {
    super();
    this.stream = stream;
    this.peer = peer;
    this.onConnect = onConnect;
    this.limits = limits;
    this.parser = mqttPacket.parser({ protocolVersion: 4 });
    this.parser.on("packet", this.onPacket);
    this.parser.on("error", this.onParseError);
    stream.on("error", this.onStreamError);
    stream.on("end", this.onStreamEnd);
    stream.on("close", this.onStreamClose);
    this.connectTimer = setTimeout(this.onConnectTimeout, limits.connectTimeoutMs);
    this.connectTimer.unref();
    if (stream.destroyed) {
      this.shutdown("stream already closed", true);
      return;
    }
    stream.on("data", this.onData);
  }

  get closed(): boolean {
    return this.state === CLOSED;
  }

  /**
   * Answer the CONNECT: 0 accepts, anything else refuses (the CONNACK is sent, then the
   * connection ends; a `close(reason)` in the same tick supplies the close reason). Only the
   * first call after the CONNECT counts; later calls are ignored.
   */
  connack(returnCode: number, sessionPresent = false): void {
    if (this.state !== AWAIT_CONNACK) return;
    if (!Number.isInteger(returnCode) || returnCode < 0 || returnCode > 255) {
      throw new RangeError(`CONNACK return code must be 0..255, got ${returnCode}`);
    }
    const accepted = returnCode === 0;
    this.stream.write(mqttPacket.generate({ cmd: "connack", returnCode, sessionPresent: accepted && sessionPresent }));
    clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    if (!accepted) {
      // Closed a microtask later so that a close(reason) right after connack() names the reason.
      this.state = REFUSED;
      this.held = undefined;
      queueMicrotask(() => this.shutdown(`connection refused (return code ${returnCode})`));
      return;
    }
    this.state = OPEN;
    if (this.keepalive > 0) {
      this.keepaliveTimer = setTimeout(this.onKeepaliveTimeout, this.keepalive * 1500);
      this.keepaliveTimer.unref();
    }
    // Deferred so that listeners attached right after connack() still see the held packets.
    setImmediate(this.releaseHeld);
  }

  /** Sends a PUBLISH (QoS 0 or 1). Returns its packet identifier (0 for QoS 0), or -1 if not open. */
  publish(message: OutgoingPublish): number {
    if (this.state !== OPEN) return -1;
    let messageId = 0;
    if (message.qos === 1) {
      if (message.messageId === undefined) {
        this.nextMessageId = this.nextMessageId >= 65_535 ? 1 : this.nextMessageId + 1;
        messageId = this.nextMessageId;
      } else if (isMessageId(message.messageId)) {
        messageId = message.messageId;
      } else {
        throw new RangeError(`MQTT messageId must be 1..65535, got ${message.messageId}`);
      }
    }
    this.stream.write(
      mqttPacket.generate({
        cmd: "publish",
        topic: message.topic,
        payload: message.payload,
        qos: message.qos,
        messageId: message.qos === 1 ? messageId : undefined,
        dup: message.qos === 1 && message.dup === true,
        retain: false,
      }),
    );
    return messageId;
  }

  puback(messageId: number): void {
    if (this.state !== OPEN) return;
    this.stream.write(mqttPacket.generate({ cmd: "puback", messageId }));
  }

  /** `granted`: one entry per subscription, 0 or 1 for the granted QoS, 0x80 for refused. */
  suback(messageId: number, granted: number[]): void {
    if (this.state !== OPEN) return;
    this.stream.write(mqttPacket.generate({ cmd: "suback", messageId, granted }));
  }

  unsuback(messageId: number): void {
    if (this.state !== OPEN) return;
    this.stream.write(mqttPacket.generate({ cmd: "unsuback", messageId, granted: [] }));
  }

  /** Ends the connection after flushing what was written (e.g. a last PUBACK). */
  close(reason: string): void {
    this.shutdown(reason);
  }

  // ---- inbound -------------------------------------------------------------------------------

  private readonly onData = (chunk: Buffer): void => {
    if (this.state === CLOSED) return; // draining after a graceful close
    let buffered: number;
    try {
      buffered = this.parser.parse(chunk);
    } catch (err) {
      // A session listener threw while handling a packet: drop this connection, not the process.
      this.shutdown(`listener error: ${errorMessage(err)}`);
      return;
    }
    // Backpressure: a client that sends requests but does not read the answers stops being read
    // until it catches up, instead of making the server buffer without limit.
    if (!this.closed && this.stream.writableLength > MAX_PENDING_WRITE_BYTES) {
      this.stream.pause();
      this.stream.once("drain", () => {
        if (!this.closed) this.stream.resume();
      });
    }
    if (this.closed || buffered === 0) return;
    // Bytes held for the packet still incomplete; also refuse early once its declared length is known.
    const declared = (this.parser as unknown as ParserInternals).packet?.length ?? -1;
    if (
      buffered > this.limits.maxPacketBytes ||
      (declared >= 0 && declared + fixedHeaderBytes(declared) > this.limits.maxPacketBytes)
    ) {
      this.shutdown("packet too large");
    }
  };

  private readonly onPacket = (packet: Packet): void => {
    if (this.state === CLOSED) return; // the parser finishes its chunk after a close
    const length = packet.length ?? 0;
    if (length + fixedHeaderBytes(length) > this.limits.maxPacketBytes) {
      this.shutdown("packet too large");
      return;
    }
    if (this.state === OPEN) {
      this.dispatch(packet);
    } else if (this.state === AWAIT_CONNECT) {
      if (packet.cmd === "connect") this.handleConnect(packet);
      else this.shutdown(`first packet was ${packet.cmd}, not connect`);
    } else if (this.held) {
      if (this.held.length >= MAX_HELD_PACKETS) this.shutdown("too many packets before connack");
      else this.held.push(packet);
    }
  };

  private handleConnect(connect: IConnectPacket): void {
    const level = connect.protocolVersion;
    // mqtt-packet turns a level with the top bit set into { protocolVersion: level - 128, bridgeMode: true }.
    const bridge = (connect as { bridgeMode?: boolean }).bridgeMode === true;
    if ((level !== 4 && level !== 3) || bridge) {
      this.refuseProtocol(`unsupported protocol level ${bridge ? `${level} (bridge)` : level}`);
      return;
    }
    this.clientId = connect.clientId;
    this.keepalive = connect.keepalive ?? 0;
    this.state = AWAIT_CONNACK;
    this.held = [];
    this.stream.pause();
    try {
      this.onConnect(this, connect);
    } catch (err) {
      this.shutdown(`connect handler error: ${errorMessage(err)}`);
    }
  }

  private refuseProtocol(reason: string): void {
    this.stream.write(
      mqttPacket.generate({ cmd: "connack", returnCode: CONNACK.unacceptableProtocolVersion, sessionPresent: false }),
    );
    this.shutdown(reason);
  }

  private dispatch(packet: Packet): void {
    this.keepaliveTimer?.refresh();
    switch (packet.cmd) {
      case "publish":
        if (this.validPublish(packet)) this.emit("publish", packet);
        break;
      case "puback":
        if (packet.length === 2 && isMessageId(packet.messageId)) this.emit("puback", packet);
        else this.shutdown("malformed puback");
        break;
      case "subscribe":
        if (isMessageId(packet.messageId) && packet.subscriptions.length > 0) this.emit("subscribe", packet);
        else this.shutdown("malformed subscribe");
        break;
      case "unsubscribe":
        if (isMessageId(packet.messageId) && packet.unsubscriptions.length > 0) this.emit("unsubscribe", packet);
        else this.shutdown("malformed unsubscribe");
        break;
      case "pingreq":
        this.stream.write(PINGRESP);
        break;
      case "disconnect":
        this.shutdown("client disconnected");
        break;
      case "connect":
        this.shutdown("second connect");
        break;
      default:
        this.shutdown(`unexpected ${packet.cmd}`);
    }
  }

  /** Checks what mqtt-packet leaves unchecked; closes the connection and returns false on a bad publish. */
  private validPublish(packet: IPublishPacket): boolean {
    if (packet.qos === 2) {
      this.shutdown("QoS 2 publish not supported");
      return false;
    }
    const topic = packet.topic;
    const payload = packet.payload;
    const payloadBytes = typeof payload === "string" ? Buffer.byteLength(payload) : payload.length;
    // mqtt-packet reads the packet id past the end of a too-short packet (from the next packet's
    // bytes) and decodes bad UTF-8 into U+FFFD; both show up as a length mismatch.
    if (
      (packet.qos === 1 && !isMessageId(packet.messageId)) ||
      Buffer.byteLength(topic) + 2 + (packet.qos === 1 ? 2 : 0) + payloadBytes !== packet.length
    ) {
      this.shutdown("malformed publish");
      return false;
    }
    // Wildcards are for filters (MQTT-3.3.2-2); U+0000 ends the connection in any string
    // (MQTT-1.5.3-2). Either would also reach answer topics that echo the request's `$rid`.
    if (topic.length === 0 || topic.includes("+") || topic.includes("#") || topic.includes("\u0000")) {
      this.shutdown("invalid publish topic");
      return false;
    }
    return true;
  }

  private readonly releaseHeld = (): void => {
    const held = this.held;
    this.held = undefined;
    try {
      if (held) {
        for (const packet of held) {
          if (this.state !== OPEN) break;
          this.dispatch(packet);
        }
      }
    } catch (err) {
      this.shutdown(`listener error: ${errorMessage(err)}`);
    }
    this.stream.resume();
  };

  private readonly onParseError = (err: Error): void => {
    // 3.1.1 wants CONNACK 1 for an unsupported level. mqtt-packet fails levels other than 3/4/5
    // ("Invalid protocol version") and usually fails a level-4-shaped CONNECT that claims level 5
    // further on; either way the level it read is on the packet in progress.
    const pending = (this.parser as unknown as ParserInternals).packet;
    if (
      this.state === AWAIT_CONNECT &&
      pending?.cmd === "connect" &&
      pending.protocolVersion !== undefined &&
      pending.protocolVersion !== 3 &&
      pending.protocolVersion !== 4
    ) {
      this.refuseProtocol(`unsupported protocol level ${pending.protocolVersion}`);
      return;
    }
    this.shutdown(`malformed packet: ${err.message}`);
  };

  // ---- timers and stream events --------------------------------------------------------------

  private readonly onConnectTimeout = (): void => {
    this.connectTimer = undefined;
    this.shutdown(this.state === AWAIT_CONNECT ? "connect timeout" : "connect handler did not answer in time");
  };

  private readonly onKeepaliveTimeout = (): void => {
    this.shutdown("keep-alive timeout");
  };

  private readonly onStreamError = (err: Error): void => {
    this.shutdown(`stream error: ${err.message}`, true);
  };

  private readonly onStreamEnd = (): void => {
    this.shutdown("peer ended the connection");
  };

  private readonly onStreamClose = (): void => {
    clearTimeout(this.killTimer);
    this.killTimer = undefined;
    this.shutdown("connection closed", true);
  };

  private readonly kill = (): void => {
    this.killTimer = undefined;
    this.stream.destroy();
  };

  /**
   * Ends the connection: end() after the queued writes (a last CONNACK/PUBACK still goes out) while
   * reading and discarding whatever the peer still sends, so that it sees an orderly close rather
   * than a reset; destroyed after CLOSE_GRACE_MS if the peer does not close. `hard`: destroy now
   * (the stream already failed or closed).
   */
  private shutdown(reason: string, hard = false): void {
    if (this.state === CLOSED) return;
    this.state = CLOSED;
    this.closeReason = reason;
    this.held = undefined;
    clearTimeout(this.connectTimer);
    clearTimeout(this.keepaliveTimer);
    this.connectTimer = undefined;
    this.keepaliveTimer = undefined;
    if (hard || this.stream.destroyed) {
      this.stream.destroy();
    } else {
      this.stream.end();
      this.stream.resume();
      this.killTimer = setTimeout(this.kill, CLOSE_GRACE_MS);
      this.killTimer.unref();
    }
    this.emit("close", reason);
  }
}
