// An AMQP connection to the built-in hubs (IoT Hub's AMQP endpoint), taken over from the AMQP
// listener: when its open frame names a hub, or, for a device that dialed a gateway name such
// as an IP address, when its first link is a hub's. Who may use which link is decided by CBS
// tokens (`put-token` on `$cbs`: a device's own token, or a hub policy's with ServiceConnect or
// DeviceConnect) or, for a device without CBS, by its TLS client certificate. Service links go to
// amqp-service-links.ts, a device's links to its AmqpDeviceSession.

import type rhea from "rhea";
import type { EventContext } from "rhea";
import {
  CLOCK_SKEW_SECONDS,
  expiredReason,
  isExpired,
  parseSasToken,
  tokenResource,
  tokenResourceAsSent,
} from "../attestation/sas-token.js";
import { ProvisioError } from "../domain/errors.js";
import type { HubRight } from "../domain/hub.js";
import { AmqpDeviceSession } from "./amqp-device-session.js";
import { answerManagement, openPartitionReader } from "./amqp-event-hub-links.js";
import { type DeviceChannel, type HubLinkAddress, parseHubLinkAddress } from "./amqp-hub-links.js";
import { type AmqpMessage, cbsResponse, MAX_TELEMETRY_BYTES, putTokenOf } from "./amqp-hub-messages.js";
import { acceptDevicebound, sendFeedback } from "./amqp-service-links.js";
import type { HubRuntime } from "./builtin-hubs.js";
import { moduleKey } from "./device-identity.js";
import { managementReply, managementRequestOf } from "./event-hub-messages.js";
import { authenticateDevice, authenticateService, certificateAuthenticates, covers } from "./hub-auth.js";
import type { TelemetryLog } from "./telemetry-log.js";

/** Where a connection finds its hubs. */
export interface HubDirectory {
  byHost(host: string): HubRuntime | undefined;
  all(): HubRuntime[];
}

/** What the listener lends the hub: its byte bound, its end, the device's TLS certificate. */
export interface HubConnectionHooks {
  /** A whole message arrived (the listener bounds bytes piling up between messages). */
  delivered(): void;
  /** Calls `listener` once the connection is gone. */
  onEnd(listener: () => void): void;
  /** The TLS client chain, leaf first ([] when none). */
  certificateChain(): readonly Buffer[];
  transport: "amqp" | "amqp-ws";
}

/** A token put on `$cbs`: for a device (its key), or a hub policy's (with its rights). */
type Grant = { rt: HubRuntime; text: string; resource: string; expiresMs: number } & (
  | { kind: "device"; key: string }
  | { kind: "policy"; rights: HubRight[] }
);

/** Who a link serves once authorized. */
type LinkRole =
  | { kind: "cbs" }
  | { kind: "serviceDevicebound"; rt: HubRuntime }
  | { kind: "serviceFeedback"; rt: HubRuntime }
  | { kind: "device"; session: AmqpDeviceSession; channel: DeviceChannel }
  /** The Event Hubs-compatible endpoint: `$management` (for `rt`, or for the hub each request names). */
  | { kind: "management"; rt: HubRuntime | undefined }
  | { kind: "partitionReader"; rt: HubRuntime; consumerGroup: string; partition: string; pump?(): void };

const hostOf = (resource: string): string => (resource.split("/")[0] ?? "").replace(/:\d+$/, "").toLowerCase();

/** `/devices/{d}[/modules/{m}]` of a device token's resource → the registry key. */
function keyOfResource(resource: string): { key: string; module: boolean } | undefined {
  const m = /^[^/]+\/devices\/([^/]+)(?:\/modules\/([^/]+))?\/?$/.exec(resource);
  if (!m?.[1]) return undefined;
  return m[2] ? { key: moduleKey(m[1], m[2]), module: true } : { key: m[1], module: false };
}

/** The hub as a module sees it: the module registry and module sessions. */
const moduleView = (rt: HubRuntime): HubRuntime => ({ ...rt, registry: rt.modules, sessions: rt.moduleSessions });

export function serveHubConnection(
  connection: rhea.Connection,
  hubs: HubDirectory,
  /** The hub the open frame named; undefined when the device dialed a gateway name. */
  named: HubRuntime | undefined,
  telemetry: TelemetryLog,
  hooks: HubConnectionHooks,
  /** The link open that handed the connection over, to be served like the ones after it. */
  first?: EventContext,
): void {
  new HubAmqpConnection(connection, hubs, named, telemetry, hooks).start(first);
}

class HubAmqpConnection {
  readonly #grants: Grant[] = [];
  readonly #roles = new Map<rhea.Sender | rhea.Receiver, LinkRole | Promise<LinkRole | undefined>>();
  /** Device sessions of this connection, by hub name and registry key. */
  readonly #devices = new Map<string, AmqpDeviceSession>();
  readonly #stops: (() => void)[] = [];
  #cbsReplies: rhea.Sender | undefined;
  /** `$management` answer links, by the reply address requests name. */
  readonly #managementReplies = new Map<string, rhea.Sender>();
  readonly #readerStops = new Map<rhea.Sender | rhea.Receiver, () => void>();
  #ended = false;

  constructor(
    private readonly connection: rhea.Connection,
    private readonly hubs: HubDirectory,
    private readonly named: HubRuntime | undefined,
    private readonly telemetry: TelemetryLog,
    private readonly hooks: HubConnectionHooks,
  ) {}

  start(first: EventContext | undefined): void {
    const c = this.connection;
    c.on("receiver_open", (ctx: EventContext) => this.#open(ctx.receiver as rhea.Receiver));
    c.on("sender_open", (ctx: EventContext) => this.#open(ctx.sender as rhea.Sender));
    c.on("receiver_close", (ctx: EventContext) => this.#closed(ctx.receiver as rhea.Receiver));
    c.on("sender_close", (ctx: EventContext) => this.#closed(ctx.sender as rhea.Sender));
    c.on("message", (ctx: EventContext) => this.#message(ctx));
    // Credit for our senders, and the device's verdicts on the messages they sent.
    c.on("sendable", (ctx: EventContext) => {
      const role = this.#decided(ctx.sender);
      if (role?.kind === "device") role.session.deliverCloudToDevice();
      if (role?.kind === "partitionReader") role.pump?.();
    });
    for (const outcome of ["accepted", "rejected", "released", "modified"] as const) {
      c.on(outcome, (ctx: EventContext) => {
        const role = this.#decided(ctx.sender);
        if (role?.kind === "device") role.session.settled(ctx.delivery as rhea.Delivery, outcome);
      });
    }
    this.hooks.onEnd(() => this.#end());
    if (first?.receiver) this.#open(first.receiver as rhea.Receiver);
    else if (first?.sender) this.#open(first.sender as rhea.Sender);
  }

  /** A link's role once decided (not while its authorization is pending). */
  #decided(link: rhea.Sender | rhea.Receiver | undefined): LinkRole | undefined {
    const role = link ? this.#roles.get(link) : undefined;
    return role instanceof Promise ? undefined : role;
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    for (const stop of this.#stops) stop();
    for (const stop of this.#readerStops.values()) stop();
    for (const session of this.#devices.values()) session.end();
    this.#devices.clear();
  }

  /** A link attaches: its terminus is mirrored at once; a refusal detaches it with the reason. */
  #open(link: rhea.Sender | rhea.Receiver): void {
    const address = link.is_sender() ? link.source?.address : link.target?.address;
    const parsed = parseHubLinkAddress(address);
    if (parsed.kind === "unknown") {
      return void link.close({ condition: "amqp:not-found", description: `no node '${address ?? ""}' on this hub` });
    }
    if (link.source) link.set_source(link.source);
    if (link.target) link.set_target(link.target);
    // IoT Hub's bound on a message, announced as it does (uAMQP logs an error when it is missing).
    (link as unknown as { local: { attach: { max_message_size: number } } }).local.attach.max_message_size =
      MAX_TELEMETRY_BYTES;
    const role = this.#roleOf(link, parsed);
    const settle = (r: LinkRole | { refused: string; condition?: string }) => {
      if ("refused" in r) {
        this.#roles.delete(link);
        link.close({ condition: r.condition ?? "amqp:unauthorized-access", description: r.refused });
        return undefined;
      }
      this.#roles.set(link, r);
      if (r.kind === "device") r.session.attach(link, r.channel);
      if (r.kind === "serviceFeedback") this.#stops.push(sendFeedback(r.rt, link as rhea.Sender));
      if (r.kind === "cbs" && link.is_sender()) this.#cbsReplies = link as rhea.Sender;
      if (r.kind === "management" && link.is_sender() && link.target?.address) {
        this.#managementReplies.set(link.target.address, link as rhea.Sender);
      }
      if (r.kind === "partitionReader") {
        const reader = openPartitionReader(link as rhea.Sender, r.rt, r.consumerGroup, r.partition);
        if ("refused" in reader) {
          this.#roles.delete(link);
          link.close({ condition: reader.condition, description: reader.refused });
          return undefined;
        }
        r.pump = reader.pump;
        this.#readerStops.set(link, reader.stop);
        reader.pump();
      }
      return r;
    };
    if (role instanceof Promise) {
      this.#roles.set(
        link,
        role.then(settle, () => settle({ refused: "the hub's registry failed", condition: "amqp:internal-error" })),
      );
    } else settle(role);
  }

  #closed(link: rhea.Sender | rhea.Receiver): void {
    const role = this.#roles.get(link);
    this.#roles.delete(link);
    this.#readerStops.get(link)?.();
    this.#readerStops.delete(link);
    if (!role || role instanceof Promise || role.kind !== "device") return;
    role.session.detached(link);
    if (role.session.links.length === 0) this.#forget(role.session);
  }

  #message(ctx: EventContext): void {
    this.hooks.delivered();
    const delivery = ctx.delivery as rhea.Delivery;
    const message = ctx.message as AmqpMessage;
    const link = ctx.receiver as rhea.Receiver | undefined;
    const role = link ? this.#roles.get(link) : undefined;
    const serve = (r: LinkRole | undefined) => {
      if (!r) return delivery.reject({ condition: "amqp:unauthorized-access", description: "the link was refused" });
      if (r.kind === "cbs") return void this.#putToken(message, delivery);
      if (r.kind === "serviceDevicebound") return acceptDevicebound(r.rt, message, delivery);
      if (r.kind === "device") return r.session.message(r.channel, delivery, message);
      if (r.kind === "management" && link?.is_receiver()) return this.#management(r.rt, message, delivery);
      delivery.reject({ condition: "amqp:not-allowed", description: "nothing is sent to this node" });
    };
    if (role instanceof Promise) void role.then(serve);
    else serve(role);
  }

  /** Which role a link gets: at once when a token decides it, later when the registry must. */
  #roleOf(
    link: rhea.Sender | rhea.Receiver,
    parsed: Exclude<HubLinkAddress, { kind: "unknown" }>,
  ): LinkRole | { refused: string; condition?: string } | Promise<LinkRole | { refused: string }> {
    if (parsed.kind === "cbs") return { kind: "cbs" };
    if (parsed.kind === "management") {
      // Requests carry their own token (security_token) or ride on one put on $cbs.
      const rt = parsed.entity === undefined ? undefined : this.#hubByEntity(parsed.entity);
      if (parsed.entity !== undefined && !rt)
        return { refused: `no hub here is named '${parsed.entity}'`, condition: "amqp:not-found" };
      return { kind: "management", rt };
    }
    if (parsed.kind === "eventHubPartition") {
      const rt = this.#hubByEntity(parsed.entity);
      if (!rt) return { refused: `no hub here is named '${parsed.entity}'`, condition: "amqp:not-found" };
      if (!link.is_sender()) {
        return {
          refused: "the events endpoint is read, not written: IoT Hub's devices send telemetry",
          condition: "amqp:not-allowed",
        };
      }
      if (!this.#serviceGrantFor(rt)) {
        return { refused: `put a token of a policy of hub '${rt.hub.name}' with ServiceConnect on $cbs first` };
      }
      return { kind: "partitionReader", rt, consumerGroup: parsed.consumerGroup, partition: parsed.partition };
    }
    if (parsed.kind === "serviceDevicebound" || parsed.kind === "serviceFeedback") {
      const rt = this.#serviceHub();
      if (!rt) return { refused: "put a hub policy's token with ServiceConnect on $cbs first" };
      if (parsed.kind === "serviceDevicebound") {
        return link.is_receiver()
          ? { kind: "serviceDevicebound", rt }
          : { refused: "the service sends on /messages/devicebound", condition: "amqp:not-allowed" };
      }
      return link.is_sender()
        ? { kind: "serviceFeedback", rt }
        : { refused: "the service receives on /messages/serviceBound/feedback", condition: "amqp:not-allowed" };
    }
    const key = parsed.moduleId === undefined ? parsed.deviceId : moduleKey(parsed.deviceId, parsed.moduleId);
    const module = parsed.moduleId !== undefined;
    const channel = parsed.channel;
    // `amqps://{hub}/devices/…` narrows the hubs to that one (the open frame's must agree).
    const hinted = parsed.host === undefined ? undefined : this.hubs.byHost(parsed.host);
    if (hinted && this.named && hinted !== this.named) {
      return {
        refused: `the link names hub '${parsed.host}', but this connection is for '${this.named.hub.hostName}'`,
      };
    }
    const only = this.named ?? hinted;
    // A device's own token decides at once (put-token checked the identity).
    const own = this.#deviceGrant(key, only);
    if (own) return { kind: "device", session: this.#session(own.rt, key, module, own.expiresMs), channel };
    return this.#authorizeLater(key, module, only).then((r) =>
      "refused" in r ? r : { kind: "device", session: this.#session(r.rt, key, module, r.untilMs), channel },
    );
  }

  /** A hub policy's token with DeviceConnect, or the device's client certificate. */
  async #authorizeLater(
    key: string,
    module: boolean,
    only: HubRuntime | undefined,
  ): Promise<{ rt: HubRuntime; untilMs: number } | { refused: string }> {
    for (const g of this.#live()) {
      if (g.kind !== "policy" || !g.rights.includes("DeviceConnect") || (only && g.rt !== only)) continue;
      const rec = await (module ? g.rt.modules : g.rt.registry).find(key);
      if (!rec) continue;
      try {
        authenticateDevice(g.text, g.rt.hub, rec.identity);
      } catch {
        continue;
      }
      if (rec.identity.status !== "enabled") return { refused: `'${key}' is disabled` };
      return { rt: g.rt, untilMs: g.expiresMs };
    }
    const leaf = this.hooks.certificateChain()[0];
    if (leaf) {
      const candidates = only ? [only] : this.hubs.all();
      for (const rt of candidates) {
        const rec = await (module ? rt.modules : rt.registry).find(key);
        if (!rec || !certificateAuthenticates(rec.identity, leaf)) continue;
        if (rec.identity.status !== "enabled") return { refused: `'${key}' is disabled` };
        return { rt, untilMs: Number.POSITIVE_INFINITY };
      }
      return { refused: `no hub here registers '${key}' with the thumbprint of the client certificate presented` };
    }
    return { refused: `put a token for '${key}' on $cbs first (or connect with its registered client certificate)` };
  }

  #live(): Grant[] {
    const now = Date.now();
    for (let i = this.#grants.length - 1; i >= 0; i--) {
      if ((this.#grants[i] as Grant).expiresMs <= now) this.#grants.splice(i, 1);
    }
    return this.#grants;
  }

  #deviceGrant(key: string, only: HubRuntime | undefined): Grant | undefined {
    let best: Grant | undefined;
    for (const g of this.#live()) {
      if (g.kind !== "device" || g.key !== key || (only && g.rt !== only)) continue;
      if (!best || g.expiresMs > best.expiresMs) best = g;
    }
    return best;
  }

  /** How long the tokens put so far let this identity on: its own, or a policy's with DeviceConnect. */
  #grantUntil(rt: HubRuntime, key: string): number | undefined {
    const scope = `${rt.hub.hostName}/devices/${key.replace("/", "/modules/")}`.toLowerCase();
    let until: number | undefined;
    for (const g of this.#live()) {
      if (g.rt !== rt) continue;
      const lets =
        g.kind === "device" ? g.key === key : g.rights.includes("DeviceConnect") && covers(g.resource, scope);
      if (lets && (until === undefined || g.expiresMs > until)) until = g.expiresMs;
    }
    return until;
  }

  /** The host name in the client's open frame (lower case, no port): what it dialed. */
  #dialedName(): string | undefined {
    const open = (this.connection as rhea.Connection & { remote?: { open?: { hostname?: string } } }).remote?.open;
    return open?.hostname ? hostOf(open.hostname) : undefined;
  }

  /** The hub an Event Hubs entity path names: the hub's name (the open frame's hub, when it named one). */
  #hubByEntity(entity: string): HubRuntime | undefined {
    const named = (rt: HubRuntime) => rt.hub.name.toLowerCase() === entity.toLowerCase();
    if (this.named) return named(this.named) ? this.named : undefined;
    return this.hubs.all().find(named);
  }

  #serviceGrantFor(rt: HubRuntime): boolean {
    return this.#live().some((g) => g.rt === rt && g.kind === "policy" && g.rights.includes("ServiceConnect"));
  }

  /** A `$management` READ: the hub it names, authorized by a token put on $cbs or its own. */
  #management(fixed: HubRuntime | undefined, message: AmqpMessage, delivery: rhea.Delivery): void {
    delivery.accept();
    const replies = this.#managementReplies.get(String(message.reply_to ?? ""));
    if (!replies) return;
    const request = managementRequestOf(message);
    if ("refused" in request) return void replies.send(managementReply(message, 400, request.refused));
    const rt = fixed ?? this.#hubByEntity(request.name);
    if (!rt || (fixed && fixed.hub.name.toLowerCase() !== request.name.toLowerCase())) {
      return void replies.send(managementReply(message, 404, `no hub here is named '${request.name}'`));
    }
    if (!this.#serviceGrantFor(rt)) {
      try {
        authenticateService(request.token, rt.hub, "ServiceConnect");
      } catch (err) {
        const why = err instanceof ProvisioError ? err.message : "the token is not valid";
        return void replies.send(managementReply(message, 401, why));
      }
    }
    answerManagement(request, message, rt, replies);
  }

  #serviceHub(): HubRuntime | undefined {
    return this.#live().find((g) => g.kind === "policy" && g.rights.includes("ServiceConnect"))?.rt;
  }

  /** The identity's session on this connection, made on its first link. */
  #session(rt: HubRuntime, key: string, module: boolean, untilMs: number): AmqpDeviceSession {
    const id = `${rt.hub.name}\n${key}`;
    let session = this.#devices.get(id);
    if (!session) {
      session = new AmqpDeviceSession(key, {
        view: module ? moduleView(rt) : rt,
        telemetry: this.telemetry,
        transport: this.hooks.transport,
        detach: (s, condition, reason) => this.#detach(s, condition, reason),
      });
      this.#devices.set(id, session);
    }
    session.authorizedUntil(untilMs, () => this.#grantUntil(rt, key));
    return session;
  }

  #forget(session: AmqpDeviceSession): void {
    for (const [id, s] of this.#devices) if (s === session) this.#devices.delete(id);
  }

  /** Ends a device's links; with no other device or service on it, the whole connection. */
  #detach(session: AmqpDeviceSession, condition: string, reason: string): void {
    const error = { condition, description: reason };
    const links = session.links;
    session.end();
    this.#forget(session);
    const others = [...this.#roles.values()].some(
      (r) => r instanceof Promise || (r.kind !== "cbs" && !(r.kind === "device" && r.session === session)),
    );
    if (!others) return void this.connection.close(error);
    for (const link of links) {
      this.#roles.delete(link);
      link.close(error);
    }
  }

  /** CBS put-token: the token is checked now, so that a wrong key or an unknown device fails `open`. */
  async #putToken(message: AmqpMessage, delivery: rhea.Delivery): Promise<void> {
    delivery.accept();
    const reply = (status: number, description: string) =>
      this.#cbsReplies?.send(cbsResponse(message, status, description));
    const request = putTokenOf(message);
    if ("refused" in request) return void reply(400, request.refused);
    try {
      this.#grants.push(await this.#grant(request.token));
      reply(200, "OK");
    } catch (err) {
      const e = err instanceof ProvisioError ? err : undefined;
      reply(e?.status === 404 ? 404 : 401, e?.message ?? "the token is not valid");
    }
  }

  async #grant(text: string): Promise<Grant> {
    const token = parseSasToken(text);
    const unauthorized = (detail: string) => new ProvisioError("hubUnauthorized", { detail });
    if (!token) throw unauthorized("the token is not a SharedAccessSignature with sr, sig and se");
    const resource = tokenResource(token);
    // Device and module ids keep their case (IoT Hub's are case-sensitive); host names do not.
    const subject = keyOfResource(tokenResourceAsSent(token));
    const gateway = this.#dialedName();
    const viaGateway = !this.named && gateway !== undefined && hostOf(resource) === gateway;
    // Valid as long as the checks below accept it: the clock skew they allow included.
    const expiresMs = (token.se + CLOCK_SKEW_SECONDS) * 1000;
    const now = Math.floor(Date.now() / 1000);
    if (viaGateway && !token.skn) {
      // Signed for the name the device dialed (the C SDK signs for its GatewayHostName): the hub
      // is the one that registers this device with the key that signed.
      const who = subject;
      if (!who) throw unauthorized(`a device token is for '{host}/devices/{deviceId}', not '${resource}'`);
      if (isExpired(token, now)) throw unauthorized(expiredReason(token, now));
      for (const rt of this.hubs.all()) {
        const rec = await (who.module ? rt.modules : rt.registry).find(who.key);
        if (!rec) continue;
        try {
          authenticateDevice(text, rt.hub, rec.identity, now, gateway);
        } catch {
          continue;
        }
        if (rec.identity.status !== "enabled") throw unauthorized(`'${who.key}' is disabled`);
        return { rt, text, resource, expiresMs, kind: "device", key: who.key };
      }
      throw unauthorized(`no built-in hub here registers '${who.key}' with the key that signed the token`);
    }
    const rt = this.named ?? this.hubs.byHost(hostOf(resource));
    if (!rt) throw unauthorized(`the token is for '${resource}', which names no built-in hub of this server`);
    if (token.skn) {
      const rights = (["ServiceConnect", "DeviceConnect"] as const).filter((right) => {
        try {
          authenticateService(text, rt.hub, right);
          return true;
        } catch {
          return false;
        }
      });
      // Neither right: the check names what is wrong (signature, scope, expiry or rights).
      if (rights.length === 0) authenticateService(text, rt.hub, "ServiceConnect");
      return { rt, text, resource, expiresMs, kind: "policy", rights };
    }
    const who = subject;
    if (!who) throw unauthorized(`a device token is for '{hub}/devices/{deviceId}', not '${resource}'`);
    if (isExpired(token, now)) throw unauthorized(expiredReason(token, now));
    const rec = await (who.module ? rt.modules : rt.registry).find(who.key);
    if (!rec) throw unauthorized(`'${who.key}' is not registered in hub '${rt.hub.name}'`);
    if (rec.identity.status !== "enabled") throw unauthorized(`'${who.key}' is disabled`);
    authenticateDevice(text, rt.hub, rec.identity);
    return { rt, text, resource, expiresMs, kind: "device", key: who.key };
  }
}
