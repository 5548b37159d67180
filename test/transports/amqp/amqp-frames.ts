// AMQP 1.0 frames by hand, for tests that must send what no well-behaved client sends: a device
// that stops half way through its setup, goes quiet, or sends garbage. rhea's own frame encoder
// (an internal module: tests only) writes the bytes.
import { createRequire } from "node:module";
import rhea from "rhea";

const require = createRequire(import.meta.url);

interface Composite {
  described(): unknown;
}
interface Frame {
  channel: number;
  type: number;
  performative: unknown;
  payload?: Buffer;
}
const frames = require("rhea/lib/frames.js") as {
  write_frame(frame: Frame): Buffer;
  amqp_frame(channel: number, performative: unknown, payload?: Buffer): Frame;
  sasl_frame(performative: unknown): Frame;
  sasl_init(fields: Record<string, unknown>): Composite;
  sasl_response(fields: Record<string, unknown>): Composite;
  read_frame(
    buffer: Buffer,
  ): { size: number; performative?: { constructor: { toString(): string } } & Record<string, unknown> } | null;
  open(fields: Record<string, unknown>): Composite;
  begin(fields: Record<string, unknown>): Composite;
  attach(fields: Record<string, unknown>): Composite;
  flow(fields: Record<string, unknown>): Composite;
  transfer(fields: Record<string, unknown>): Composite;
  close(fields: Record<string, unknown>): Composite;
};
const terminus = require("rhea/lib/terminus.js") as {
  source(fields: Record<string, unknown>): Composite;
  target(fields: Record<string, unknown>): Composite;
};

export const SASL_HEADER = Buffer.from("AMQP\x03\x01\x00\x00", "latin1");
export const AMQP_HEADER = Buffer.from("AMQP\x00\x01\x00\x00", "latin1");

const amqp = (performative: Composite, payload?: Buffer) =>
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
export const saslInit = (mechanism: string, initialResponse: Buffer): Buffer =>
  frames.write_frame(
    frames.sasl_frame(
      frames.sasl_init({ mechanism, initial_response: initialResponse, hostname: "localhost" }).described(),
    ),
  );
export const saslResponse = (response: Buffer): Buffer =>
  frames.write_frame(frames.sasl_frame(frames.sasl_response({ response }).described()));

/** The next whole frame of `buffer`: its size, performative name (`sasl_challenge`, …) and fields. */
export function readFrame(buffer: Buffer): { size: number; name: string; fields: Record<string, unknown> } | undefined {
  if (buffer.length < 4 || buffer.length < buffer.readUInt32BE(0)) return undefined;
  const frame = frames.read_frame(buffer);
  if (!frame) return undefined;
  const name = String(frame.performative?.constructor.toString() ?? "").split("#")[0] ?? "";
  return { size: frame.size, name, fields: frame.performative ?? {} };
}

export const saslAnonymous = (): Buffer =>
  frames.write_frame(frames.sasl_frame(frames.sasl_init({ mechanism: "ANONYMOUS" }).described()));

export const open = (): Buffer => amqp(frames.open({ container_id: "raw-device", hostname: "localhost" }));
export const begin = (): Buffer =>
  amqp(frames.begin({ next_outgoing_id: 0, incoming_window: 2048, outgoing_window: 2048 }));
export const close = (): Buffer => amqp(frames.close({}));

/** The two links of §7.2: handle 0 receives the answers, handle 1 sends the requests. */
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

/** A request on handle 1; `more` marks a delivery that continues in the next transfer. */
export const transfer = (id: number, message: rhea.Message, more = false): Buffer =>
  amqp(
    frames.transfer({ handle: 1, delivery_id: id, delivery_tag: Buffer.from(String(id)), message_format: 0, more }),
    rhea.message.encode(message),
  );

/** A continuation of delivery `id` carrying raw bytes. */
export const moreBytes = (id: number, bytes: Buffer, more = true): Buffer =>
  amqp(
    frames.transfer({ handle: 1, delivery_id: id, delivery_tag: Buffer.from(String(id)), message_format: 0, more }),
    bytes,
  );

export const registerMessage = (registrationId: string): rhea.Message => ({
  correlation_id: `corr-${registrationId}`,
  application_properties: { "iotdps-operation-type": "iotdps-register" },
  body: rhea.message.data_section(Buffer.from(JSON.stringify({ registrationId }))),
});
