// A device's DPS connection over AMQP 1.0 (device-api.md §7), on TLS or a WebSocket. rhea does the
// framing, SASL and links; this file is the session logic: who the device is (SASL PLAIN, or no
// SASL and its TLS client certificate), its two links on `{idScope}/registrations/{registrationId}`,
// and each request answered through the device port (dps-messages.ts maps the messages).
import rhea, { type Container, type EventContext } from "rhea";
import type { TpmKeys } from "../../attestation/tpm-attestation.js";
import { ProvisioError } from "../../domain/errors.js";
import { MAX_MESSAGE_BYTES, parseJson } from "../../domain/json.js";
import type { Logger } from "../../observability/logger.js";
import {
  type DeviceCredentials,
  type DevicePort,
  type DeviceReply,
  type DeviceSession,
  errorReply,
  isDeviceReply,
} from "../../provisioning/device-port.js";
import {
  type AmqpMessage,
  type DeviceAddress,
  GET_OPERATION_STATUS,
  parseDeviceAddress,
  REGISTER,
  rejectionOf,
  requestOf,
  responseOf,
  sameDevice,
} from "./dps-messages.js";
import { ASK_FOR_SRK, blobSegments, parseTpmInit, parseTpmResponse, type TpmSaslInit } from "./sasl-tpm.js";

/** What the session needs of the connection under it. */
export interface AmqpPeer {
  remoteAddress: string;
  /** The TLS client chain, leaf first ([] when none); read when a device without SASL asks. */
  certificateChain(): readonly Buffer[];
  /** Closes the connection underneath (TLS socket or WebSocket) at once. */
  destroy(): void;
  /** Hears of every chunk of bytes the device sends. */
  onBytes(listener: (n: number) => void): void;
}

/** Hands the connection underneath to rhea: a TLS socket, or a WebSocket (container.websocket_accept). */
export type AmqpAccept = (container: Container, options: rhea.ConnectionOptions) => void;

export interface AmqpLimits {
  /** From accept: SASL, open and both links must be done within this time. */
  setupTimeoutMs: number;
  /** Advertised to the device; a connection silent for twice this long is closed. */
  idleTimeoutMs: number;
  /** Bytes a device may send that have not yet made a whole message: past it the connection goes. */
  maxPendingBytes: number;
}

export const DEFAULT_AMQP_LIMITS: AmqpLimits = {
  setupTimeoutMs: 30_000,
  idleTimeoutMs: 120_000,
  maxPendingBytes: 1024 * 1024,
};

/** What the listener lends a connection it hands to another service. */
export interface AmqpTakenHooks {
  /** A whole message arrived: the bound on bytes piling up between messages starts again. */
  delivered(): void;
  /** Calls `listener` once the connection is gone. */
  onEnd(listener: () => void): void;
  /** The TLS client chain, leaf first ([] when none). */
  certificateChain(): readonly Buffer[];
  protocol: "amqp" | "amqpws";
}

/** Serves a connection taken over; `first` is the link open that decided it, when one did. */
export type AmqpServe = (connection: rhea.Connection, hooks: AmqpTakenHooks, first?: EventContext) => void;

/**
 * Another service on the same port (the built-in hubs, server.ts): a connection whose open frame
 * names one of its host names is handed to it after SASL; so is one whose first link is for one
 * of its nodes (a device that dialed a gateway name, such as an IP address, rather than the hub's).
 */
export interface AmqpTakeover {
  byHost(hostname: string): AmqpServe | undefined;
  byLink(address: string | undefined): AmqpServe | undefined;
}

export interface AmqpOptions {
  limits?: AmqpLimits;
  /** Connections for other host names than the DPS endpoint; none: every connection is a device's. */
  takeover?: AmqpTakeover;
  /** Over TLS or over WebSockets: what the device port (and its metrics) hear. */
  protocol?: "amqp" | "amqpws";
  /** Hears why a device was refused where AMQP has no room for the reason (SASL). */
  log?: Logger;
}

/** How long a closing connection may take to finish its close handshake. */
const CLOSE_GRACE_MS = 5_000;

/** rhea accepts a socket on a connection it made; its typings leave `accept` out. */
type AcceptingConnection = rhea.Connection & { accept(socket: unknown): rhea.Connection };

/** Accepts a TLS (or plain) socket. */
export const acceptSocket =
  (socket: unknown): AmqpAccept =>
  (container, options) => {
    (container.create_connection(options) as AcceptingConnection).accept(socket);
  };

/** What the SASL TPM exchange asks of the connection: a challenge for the keys, then the answer. */
interface TpmSaslHooks {
  /** The authenticationKey (raw bytes) for this device, or undefined when it gets no challenge. */
  challenge(init: TpmSaslInit, storageRootKey: Buffer): Promise<Buffer | undefined>;
  /** Admits the device whose TPM signed `token` with the challenge key; false when it did not. */
  answer(init: TpmSaslInit, storageRootKey: Buffer, token: string): Promise<boolean>;
}

/** rhea's server side of SASL `TPM` (sasl-tpm.ts): each step's promise is the next challenge. */
class TpmMechanism {
  outcome: boolean | undefined = undefined;
  username: string | undefined;
  #init: TpmSaslInit | undefined;
  #storageRootKey: Buffer | undefined;
  #segments: Buffer[] = [];

  constructor(private readonly hooks: TpmSaslHooks) {}

  start(response: Buffer | undefined): Buffer | undefined {
    this.#init = parseTpmInit(response);
    if (!this.#init) {
      this.outcome = false;
      return undefined;
    }
    this.username = `${this.#init.idScope}/registrations/${this.#init.registrationId}`;
    return ASK_FOR_SRK;
  }

  async step(response: Buffer | undefined): Promise<Buffer | undefined> {
    const init = this.#init;
    if (!init) return this.refuse();
    if (!this.#storageRootKey) {
      this.#storageRootKey = parseTpmResponse(response);
      if (!this.#storageRootKey) return this.refuse();
      const blob = await this.hooks.challenge(init, this.#storageRootKey);
      if (!blob) return this.refuse();
      this.#segments = blobSegments(blob);
      return this.#segments.shift();
    }
    // The device acknowledged a segment that was not the last.
    if (this.#segments.length > 0) return this.#segments.shift();
    const token = parseTpmResponse(response)?.toString("utf8");
    this.outcome = token !== undefined && (await this.hooks.answer(init, this.#storageRootKey, token));
    return undefined;
  }

  private refuse(): undefined {
    this.outcome = false;
    return undefined;
  }
}

/**
 * Accepts one device connection. The connection gets a container of its own, so that SASL knows
 * whose connection it authenticates. A refusal at SASL (unknown scope, wrong key, invalid id) ends
 * the connection there, as §7.5 says; every other refusal rejects the request with the DPS error.
 */
export function acceptAmqpDevice(
  accept: AmqpAccept,
  peer: AmqpPeer,
  port: DevicePort,
  options: AmqpOptions = {},
): void {
  const { limits = DEFAULT_AMQP_LIMITS, log, protocol = "amqp" } = options;
  /** Who SASL PLAIN said the device is; undefined without SASL (X.509: the link address says). */
  let plain: DeviceAddress | undefined;
  let credentials: DeviceCredentials = { kind: "none" };
  let session: Promise<DeviceSession> | undefined;
  let address: DeviceAddress | undefined;
  let responder: rhea.Sender | undefined;
  let pendingBytes = 0;
  /** A TPM device's keys, from SASL TPM: its requests carry them on. */
  let tpmKeys: TpmKeys | undefined;

  const sourceAddress = () => peer.remoteAddress;
  /** What every device-port request of this connection carries besides the device and credentials. */
  const via = { sourceAddress, protocol };
  const container = rhea.create_container({ id: "provisio", autoaccept: false });
  container.sasl_server_mechanisms.enable_anonymous();
  // MSSBCBS, Azure's "a CBS token follows": what the C SDK's uAMQP asks for by name before it puts
  // a token on a hub's $cbs. Like ANONYMOUS it names no one; the token decides.
  container.sasl_server_mechanisms.MSSBCBS = () => ({
    outcome: undefined as boolean | undefined,
    start(this: { outcome: boolean | undefined }) {
      this.outcome = true;
    },
  });
  container.sasl_server_mechanisms.enable_plain(async (username: string, password: string) => {
    const who = parseDeviceAddress(username);
    if (!who || !password) {
      log?.info({ remoteAddress: peer.remoteAddress, username }, "AMQP SASL PLAIN refused: not a DPS identity");
      return false;
    }
    const sas: DeviceCredentials = { kind: "sas", token: password };
    // The device attests here, so a wrong key or an unknown scope is refused at SASL (§7.5).
    const opened = await port.openSession({ ...who, credentials: sas, ...via });
    if (!opened.ok && opened.reply.status < 429) {
      // SASL has no room for a reason: the log keeps it for the operator.
      log?.info({ ...who, remoteAddress: peer.remoteAddress, error: opened.reply.body }, "AMQP SASL PLAIN refused");
      return false;
    }
    plain = who;
    credentials = sas;
    // A throttled or failing service is no verdict on the device: its first request attests again
    // and is rejected with a condition the SDKs retry.
    if (opened.ok) session = Promise.resolve(opened.session);
    return true;
  });
  // SASL TPM (tpm-attestation.md §10): the challenge and the answer go through the device port.
  container.sasl_server_mechanisms.TPM = () =>
    new TpmMechanism({
      challenge: async (init, storageRootKey) => {
        const tpm = { endorsementKey: init.endorsementKey, storageRootKey };
        const opened = await port.openSession({ ...init, credentials: { kind: "none" }, tpm, ...via });
        if (!opened.ok && opened.reply.kind === "challenge") {
          return Buffer.from(opened.reply.body.authenticationKey, "base64");
        }
        // Another EK, an unknown id, a disabled enrollment: no challenge, and SASL has no room for why.
        log?.info(
          {
            ...init,
            endorsementKey: undefined,
            remoteAddress: peer.remoteAddress,
            error: opened.ok ? "no challenge" : opened.reply.body,
          },
          "AMQP SASL TPM refused",
        );
        return undefined;
      },
      answer: async (init, storageRootKey, token) => {
        const tpm = { endorsementKey: init.endorsementKey, storageRootKey };
        const sas: DeviceCredentials = { kind: "sas", token };
        const opened = await port.openSession({ ...init, credentials: sas, tpm, ...via });
        if (!opened.ok) {
          log?.info(
            { ...init, endorsementKey: undefined, remoteAddress: peer.remoteAddress, error: opened.reply.body },
            "AMQP SASL TPM refused",
          );
          return false;
        }
        plain = { idScope: init.idScope, registrationId: init.registrationId };
        credentials = sas;
        tpmKeys = tpm;
        session = Promise.resolve(opened.session);
        return true;
      },
    });

  // rhea's typings describe a client's options; a server connection takes only its open frame's.
  const connectionOptions = {
    container_id: "provisio",
    idle_time_out: limits.idleTimeoutMs,
    max_frame_size: 64 * 1024,
    // The highest channel number: a hub connection carries a session per device it multiplexes
    // (the C and C# SDKs, IoT Edge's upstream) and the C# SDK gives CBS a session of its own.
    channel_max: 255,
  } as unknown as rhea.ConnectionOptions;

  // SASL, open and both links in time; a device that never gets there is dropped.
  const setup = setTimeout(() => end(), limits.setupTimeoutMs);
  let ended = false;
  /** Set once the device is named: ends the connection if a network rule comes to refuse it. */
  let unwatch: (() => void) | undefined;
  /** A service that took the connection over hears of its end. */
  const endListeners: (() => void)[] = [];
  const end = () => {
    if (ended) return;
    ended = true;
    clearTimeout(setup);
    unwatch?.();
    peer.destroy();
    for (const listener of endListeners) listener();
  };
  // A close (either side's, or after an error) is answered by rhea, which then ends the socket; the
  // socket goes at once only if the device never finishes its side.
  const linger = () => {
    clearTimeout(setup);
    setTimeout(end, CLOSE_GRACE_MS).unref();
  };
  container.on("disconnected", end);
  // A connection for another service (a built-in hub): its links and messages go there (their
  // listeners on the connection come before these on the container); its close and end stay here.
  let takenOver = false;
  const takeOver = (serve: AmqpServe, connection: rhea.Connection, first?: EventContext) => {
    takenOver = true;
    clearTimeout(setup);
    serve(
      connection,
      {
        delivered: () => {
          pendingBytes = 0;
        },
        onEnd: (listener) => endListeners.push(listener),
        certificateChain: () => peer.certificateChain(),
        protocol,
      },
      first,
    );
  };
  container.on("connection_open", (ctx: EventContext) => {
    const connection = ctx.connection as rhea.Connection & { remote?: { open?: { hostname?: string } } };
    const serve = options.takeover?.byHost(String(connection.remote?.open?.hostname ?? ""));
    if (serve) takeOver(serve, connection);
  });
  /** A first link for another service's node hands the connection over (a device dialing a gateway name). */
  const handedOver = (ctx: EventContext, linkAddress: string | undefined): boolean => {
    if (takenOver || address || plain || tpmKeys) return false;
    const serve = options.takeover?.byLink(linkAddress);
    if (!serve) return false;
    takeOver(serve, ctx.connection as rhea.Connection, ctx);
    return true;
  };
  container.on("connection_close", linger);
  container.on("connection_error", linger);
  container.on("protocol_error", linger);
  container.on("error", linger);
  // rhea keeps every frame of a delivery until it is whole: bound what a device may pile up.
  peer.onBytes((n) => {
    pendingBytes += n;
    if (pendingBytes > limits.maxPendingBytes) end();
  });

  /** The device's session: attested at SASL, or (no SASL) with its client certificate on first use. */
  const attested = (): Promise<DeviceSession> => {
    if (session) return session;
    if (!address) return Promise.reject(errorReply(new Error("no link")));
    if (credentials.kind !== "sas") {
      const chain = peer.certificateChain();
      credentials = chain.length > 0 ? { kind: "x509", chain } : { kind: "none" };
    }
    const attempt = port.openSession({ ...address, credentials, ...via }).then((r) => {
      if (r.ok) return r.session;
      throw r.reply;
    });
    attempt.catch(() => {
      if (session === attempt) session = undefined;
    });
    session = attempt;
    return attempt;
  };

  /** A link names the device; a SASL identity and the other link must agree. */
  const claim = (linkAddress: string | undefined): string | undefined => {
    const named = parseDeviceAddress(linkAddress);
    if (!named) return "the link address must be {idScope}/registrations/{registrationId}";
    if (plain && !sameDevice(plain, named)) return `the link is for '${linkAddress}', not for the authenticated device`;
    if (address && !sameDevice(address, named)) return "both links must name the same device";
    address = named;
    unwatch ??= port.watchAdmission(named.idScope, peer.remoteAddress, () => end());
    if (responder && address) clearTimeout(setup);
    return undefined;
  };

  // An accepted link's attach mirrors the device's terminus; a refused one answers with none and
  // detaches with the reason, as AMQP 1.0 §2.6.3 says a peer refuses a link.
  const mirror = (link: rhea.Sender | rhea.Receiver) => {
    if (link.source) link.set_source(link.source);
    if (link.target) link.set_target(link.target);
    // The bound on a message, announced (uAMQP, the C SDK's AMQP, logs an error when it is missing).
    (link as unknown as { local: { attach: { max_message_size: number } } }).local.attach.max_message_size =
      limits.maxPendingBytes;
  };
  container.on("sender_open", (ctx: EventContext) => {
    const sender = ctx.sender as rhea.Sender;
    if (handedOver(ctx, sender.source?.address)) return;
    const refused = claim(sender.source?.address);
    if (refused) return sender.close({ condition: "amqp:unauthorized-access", description: refused });
    mirror(sender);
    responder = sender;
    if (address) clearTimeout(setup);
  });
  container.on("receiver_open", (ctx: EventContext) => {
    const receiver = ctx.receiver as rhea.Receiver;
    if (handedOver(ctx, receiver.target?.address)) return;
    const refused = claim(receiver.target?.address);
    if (refused) return receiver.close({ condition: "amqp:unauthorized-access", description: refused });
    mirror(receiver);
    if (responder) clearTimeout(setup);
  });

  container.on("message", (ctx: EventContext) => {
    pendingBytes = 0;
    const delivery = ctx.delivery as rhea.Delivery;
    const message = ctx.message as AmqpMessage;
    const request = requestOf(message);
    const reject = (reply: DeviceReply) => {
      if (reply.kind === "error") delivery.reject(rejectionOf(reply));
    };
    // Refusals before the device port is asked are DPS errors too, from the one catalogue.
    const refuse = (error: ProvisioError) => reject(errorReply(error));
    if (request.kind === "unknown") return refuse(new ProvisioError("invalidBody", { detail: request.reason }));
    if (request.kind === "register" && request.body.length > MAX_MESSAGE_BYTES) {
      return refuse(new ProvisioError("bodyTooLarge", { limit: MAX_MESSAGE_BYTES }));
    }
    if (!responder || !address) {
      return refuse(
        new ProvisioError("invalidBody", {
          detail: "attach a receiver link on the device's address before sending requests; the answers go there",
        }),
      );
    }
    const device = address;
    const answerOn = responder;
    const common = { ...device, credentials, ...via, ...(tpmKeys ? { tpm: tpmKeys } : {}) };
    attested()
      .then((s) =>
        request.kind === "register"
          ? port.register({ ...common, credentials, body: parseJson(request.body) }, s)
          : port.operationStatus({ ...common, credentials }, request.operationId, s),
      )
      .then(
        (reply) => {
          if (reply.kind === "error") return reject(reply);
          delivery.accept();
          answerOn.send(
            responseOf(reply, message.correlation_id, request.kind === "register" ? REGISTER : GET_OPERATION_STATUS),
          );
        },
        (refusal: unknown) => reject(isDeviceReply(refusal) ? refusal : errorReply(refusal)),
      );
  });

  accept(container, connectionOptions);
}
