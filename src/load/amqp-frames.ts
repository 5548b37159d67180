// AMQP 1.0 frames by hand, with rhea's own frame codec (an internal module): for the lean load
// generator behind `npm run bench` and `provisio device simulate`, which wants no container per
// device, and for tests that must send what no well-behaved client sends (a device that stops half
// way through its setup, goes quiet, or sends garbage).
import { createRequire } from "node:module";
import rhea from "rhea";

const require = createRequire(import.meta.url);

type Fields = Record<string, unknown>;
interface Composite {
  described(): unknown;
}
interface OutgoingFrame {
  channel: number;
  type: number;
  performative: unknown;
  payload?: Buffer;
}
const frames = require("rhea/lib/frames.js") as {
  write_frame(frame: OutgoingFrame): Buffer;
  amqp_frame(channel: number, performative: unknown, payload?: Buffer): OutgoingFrame;
  sasl_frame(performative: unknown): OutgoingFrame;
  read_frame(buffer: Buffer): { size: number; performative?: Fields; payload?: Buffer } | null;
  sasl_init(fields: Fields): Composite;
  sasl_response(fields: Fields): Composite;
  open(fields: Fields): Composite;
  begin(fields: Fields): Composite;
  attach(fields: Fields): Composite;
  flow(fields: Fields): Composite;
  transfer(fields: Fields): Composite;
  disposition(fields: Fields): Composite;
  close(fields: Fields): Composite;
};
const terminus = require("rhea/lib/terminus.js") as {
  source(fields: Fields): Composite;
  target(fields: Fields): Composite;
};
/** rhea's `accepted` outcome (missing from its typings). */
const accepted = (rhea.message as unknown as { accepted(): Composite }).accepted;

export const SASL_HEADER = Buffer.from("AMQP\x03\x01\x00\x00", "latin1");
export const AMQP_HEADER = Buffer.from("AMQP\x00\x01\x00\x00", "latin1");
export const HEADER_BYTES = 8;

const amqp = (performative: Composite, payload?: Buffer): Buffer =>
  frames.write_frame(frames.amqp_frame(0, performative.described(), payload));

export const saslInit = (mechanism: string, initialResponse?: Buffer, hostname = "localhost"): Buffer =>
  frames.write_frame(
    frames.sasl_frame(
      frames
        .sasl_init({
          mechanism,
          ...(initialResponse ? { initial_response: initialResponse } : {}),
          hostname,
        })
        .described(),
    ),
  );
export const saslPlain = (username: string, password: string, hostname = "localhost"): Buffer =>
  saslInit("PLAIN", Buffer.from(`\0${username}\0${password}`), hostname);
export const saslAnonymous = (): Buffer => saslInit("ANONYMOUS");
export const saslResponse = (response: Buffer): Buffer =>
  frames.write_frame(frames.sasl_frame(frames.sasl_response({ response }).described()));

export const open = (hostname = "localhost"): Buffer => amqp(frames.open({ container_id: "raw-device", hostname }));
export const begin = (): Buffer =>
  amqp(frames.begin({ next_outgoing_id: 0, incoming_window: 2048, outgoing_window: 2048 }));
export const close = (): Buffer => amqp(frames.close({}));

/** The two links of device-api.md §7.2: handle 0 receives the answers (with credit), handle 1 sends the requests. */
export const attachLinks = (address: string): Buffer[] => [
  amqp(
    frames.attach({
      name: "answers",
      handle: 0,
      role: true,
      source: terminus.source({ address }).described(),
      target: terminus.target({}).described(),
    }),
  ),
  amqp(
    frames.flow({
      handle: 0,
      next_incoming_id: 0,
      incoming_window: 2048,
      next_outgoing_id: 0,
      outgoing_window: 2048,
      delivery_count: 0,
      link_credit: 100,
    }),
  ),
  amqp(
    frames.attach({
      name: "requests",
      handle: 1,
      role: false,
      source: terminus.source({}).described(),
      target: terminus.target({ address }).described(),
      initial_delivery_count: 0,
    }),
  ),
];

/** After SASL: the AMQP header, open, begin and both links, in one write. */
export const setupFrames = (address: string, hostname = "localhost"): Buffer =>
  Buffer.concat([AMQP_HEADER, open(hostname), begin(), ...attachLinks(address)]);

/** Bytes of delivery `id` on the request link, unsettled; `more`: the delivery continues in the next transfer. */
export const transferBytes = (id: number, bytes: Buffer, more = false): Buffer =>
  amqp(
    frames.transfer({ handle: 1, delivery_id: id, delivery_tag: Buffer.from(String(id)), message_format: 0, more }),
    bytes,
  );
/** A request message as delivery `id`. */
export const transfer = (id: number, message: rhea.Message, more = false): Buffer =>
  transferBytes(id, rhea.message.encode(message), more);

/** Settles (accepts) delivery `id` of the answer link, as the SDK's receiver does. */
export const acceptFrame = (id: number): Buffer =>
  amqp(frames.disposition({ role: true, first: id, settled: true, state: accepted().described() }));

export const registerMessage = (registrationId: string): rhea.Message => ({
  correlation_id: `corr-${registrationId}`,
  application_properties: { "iotdps-operation-type": "iotdps-register" },
  body: rhea.message.data_section(Buffer.from(JSON.stringify({ registrationId }))),
});

/** A decoded composite's name (rhea's classes print as `name#code`): `sasl_outcome`, `rejected`, … */
export const compositeName = (value: unknown): string =>
  String((value as { constructor?: { toString(): string } } | undefined)?.constructor?.toString() ?? "").split(
    "#",
  )[0] ?? "";

export interface ReadFrame {
  size: number;
  /** The performative's name: `sasl_challenge`, `transfer`, … */
  name: string;
  fields: Fields;
  payload?: Buffer;
}

/** The next whole frame of `buffer`, or undefined while it is incomplete. */
export function readFrame(buffer: Buffer): ReadFrame | undefined {
  if (buffer.length < 4 || buffer.length < buffer.readUInt32BE(0)) return undefined;
  const frame = frames.read_frame(buffer);
  if (!frame) return undefined;
  return {
    size: frame.size,
    name: compositeName(frame.performative),
    fields: frame.performative ?? {},
    ...(frame.payload ? { payload: frame.payload } : {}),
  };
}

interface TypedValue {
  descriptor?: { value?: unknown };
  value?: unknown;
}
const unwrap = (rhea as unknown as { types: { unwrap(v: unknown): unknown } }).types.unwrap;
const OUTCOMES: Record<number, string> = { 36: "accepted", 37: "rejected", 38: "released", 39: "modified" };

/**
 * A disposition's delivery state as read: rhea's frame reader leaves it a described list, not an
 * outcome object. Its name, and for `rejected` the error (condition, description, info).
 */
export function deliveryOutcome(state: unknown): {
  name: string;
  error?: { condition?: string; description?: string; info?: Record<string, unknown> };
} {
  const named = compositeName(state);
  if (named === "rejected") {
    const error = (state as { error?: { condition?: string; description?: string; info?: Record<string, unknown> } })
      .error;
    return { name: named, ...(error ? { error } : {}) };
  }
  const typed = state as TypedValue | undefined;
  const code = Number(typed?.descriptor?.value);
  const name = OUTCOMES[code] ?? named;
  if (name !== "rejected") return { name };
  const fields = Array.isArray(typed?.value) ? (typed.value as TypedValue[]) : [];
  const error = fields[0];
  const parts = Array.isArray(error?.value) ? (error.value as unknown[]).map((v) => unwrap(v)) : [];
  const [condition, description, info] = parts;
  return {
    name,
    error: {
      ...(typeof condition === "string" ? { condition } : {}),
      ...(typeof description === "string" ? { description } : {}),
      ...(typeof info === "object" && info !== null ? { info: info as Record<string, unknown> } : {}),
    },
  };
}
