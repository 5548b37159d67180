// AMQP 1.0 frames for the AMQP load generator: encoded and decoded with rhea's own frame codec (an
// internal module; rhea has no public frame API) so the generator needs no client library and no
// container per device.
import { createRequire } from "node:module";
import rhea from "rhea";

const require = createRequire(import.meta.url);

interface Composite {
  described(): unknown;
}
export interface Frame {
  size: number;
  type: number;
  channel: number;
  performative?: { descriptor?: unknown } & Record<string, unknown>;
  payload?: Buffer;
}
type Fields = Record<string, unknown>;

const frames = require("rhea/lib/frames.js") as {
  write_frame(frame: { channel: number; type: number; performative: unknown; payload?: Buffer }): Buffer;
  read_frame(buffer: Buffer): Frame | null;
  amqp_frame(channel: number, performative: unknown, payload?: Buffer): never;
  sasl_frame(performative: unknown): never;
  sasl_init(fields: Fields): Composite;
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

export const saslPlain = (username: string, password: string): Buffer =>
  frames.write_frame(
    frames.sasl_frame(
      frames
        .sasl_init({
          mechanism: "PLAIN",
          initial_response: Buffer.from(`\0${username}\0${password}`),
          hostname: "localhost",
        })
        .described(),
    ),
  );

/** Open, begin and the two links of device-api.md §7.2, with credit for the answers. */
export function setupFrames(address: string): Buffer {
  return Buffer.concat([
    AMQP_HEADER,
    amqp(frames.open({ container_id: "bench-device", hostname: "localhost" })),
    amqp(frames.begin({ next_outgoing_id: 0, incoming_window: 2048, outgoing_window: 2048 })),
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
  ]);
}

/** A request (an encoded message) on the request link, delivery `id`, unsettled as the SDK sends it. */
export const transferFrame = (id: number, message: Buffer): Buffer =>
  amqp(frames.transfer({ handle: 1, delivery_id: id, delivery_tag: Buffer.from([id]), message_format: 0 }), message);

/** Settles (accepts) delivery `id` of the answer link, as the SDK's receiver does. */
export const acceptFrame = (id: number): Buffer =>
  amqp(frames.disposition({ role: true, first: id, settled: true, state: accepted().described() }));

export const CLOSE = amqp(frames.close({}));

/** The next whole frame of `buffer` and its size, or undefined while it is incomplete. */
export function readFrame(buffer: Buffer): Frame | undefined {
  if (buffer.length < 4 || buffer.length < buffer.readUInt32BE(0)) return undefined;
  return frames.read_frame(buffer) ?? undefined;
}

/** The performative's name (rhea's composite classes print as `name#code`). */
export const performativeName = (frame: Frame): string =>
  String(frame.performative?.constructor?.toString() ?? "").split("#")[0] ?? "";
