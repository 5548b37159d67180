// A simulated device registering over AMQP 1.0 (device-api.md §7), on TLS or a WebSocket, each on
// a fresh connection: SASL PLAIN (SAS token; X.509 devices skip SASL) → outcome; open, begin, the answer link with credit and the
// request link → the service's credit; the register message → the answer (`assigning`: poll with
// iotdps-get-operationstatus after retry-after; a rejection the SDK retries: register again), then
// close. The steps wait for each other as the Azure SDK's do. Raw frames, no client library.
import rhea from "rhea";
import {
  acceptFrame,
  close,
  deliveryOutcome,
  HEADER_BYTES,
  type ReadFrame,
  readFrame,
  SASL_HEADER,
  saslPlain,
  setupFrames,
  transferBytes,
} from "./amqp-frames.js";
import { dial, type Endpoint } from "./dial.js";
import {
  assignedOutcome,
  type DeviceIdentity,
  describeFailure,
  generic,
  MAX_POLLS,
  type Outcome,
  parseOperation,
  REQUEST_TIMEOUT_MS,
  registerBody,
} from "./load-run.js";

/** One device's precomputed bytes. */
export interface AmqpDevice {
  registrationId: string;
  /** Undefined for X.509. */
  sasl: Buffer | undefined;
  setup: Buffer;
  register: Buffer;
}

/** Build a device's bytes ahead of timing; `hostname`: the server's name, for SASL and open. */
export function prepareAmqpDevice(id: DeviceIdentity, hostname: string): AmqpDevice {
  const address = `${id.idScope}/registrations/${id.registrationId}`;
  return {
    registrationId: id.registrationId,
    // X.509 devices send no SASL: the AMQP header comes first (device-api.md §7.1).
    sasl: id.token ? Buffer.concat([SASL_HEADER, saslPlain(address, id.token, hostname)]) : undefined,
    setup: setupFrames(address, hostname),
    register: registerMessage(id),
  };
}

const registerMessage = (id: DeviceIdentity): Buffer =>
  rhea.message.encode({
    correlation_id: `register-${id.registrationId}`,
    application_properties: { "iotdps-operation-type": "iotdps-register", "iotdps-forceRegistration": false },
    body: rhea.message.data_section(registerBody(id)),
  });

const pollMessage = (operationId: string, n: number): Buffer =>
  rhea.message.encode({
    correlation_id: `poll-${n}`,
    application_properties: {
      "iotdps-operation-type": "iotdps-get-operationstatus",
      "iotdps-operation-id": operationId,
    },
    body: "",
  });

/** The device's SASL and AMQP headers are 8 bytes each and come before any frame. */
type Phase = "sasl-header" | "sasl" | "amqp-header" | "amqp";

export function registerAmqp(target: Endpoint, d: AmqpDevice): Promise<Outcome> {
  return new Promise<Outcome>((resolve, reject) => {
    const wire = dial(target, "AMQPWSB10");
    const socket = wire.stream;
    let buffer: Buffer = Buffer.alloc(0);
    let phase: Phase = d.sasl ? "sasl-header" : "amqp-header";
    let step = d.sasl ? "SASL outcome" : "the request link's credit";
    let settled = false;
    let delivery = 0;
    let polls = 0;
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
      if (outcome.ok) socket.end(close());
      else socket.destroy();
      resolve(outcome);
    };
    const fail = (why: string): void => finish({ ok: false, why });
    const send = (message: Buffer): void => {
      socket.write(transferBytes(delivery++, message));
    };
    const later = (seconds: number, message: Buffer, what: string): void => {
      if (polls >= MAX_POLLS) {
        fail(`still not assigned after ${MAX_POLLS} polls`);
        return;
      }
      polls++;
      retryTimer = setTimeout(() => {
        retryTimer = undefined;
        step = what;
        send(message);
      }, seconds * 1000);
    };

    const onFrame = (frame: ReadFrame): void => {
      const { name, fields: p } = frame;
      if (name === "sasl_outcome") {
        if (p.code !== 0) {
          // sasl-code 1 is "auth": the token or key was refused (AMQP 1.0 §5.3.3.6).
          fail(`SASL outcome ${String(p.code)}${p.code === 1 ? " (authentication failed)" : ""}`);
          return;
        }
        phase = "amqp-header";
        step = "the request link's credit";
        socket.write(d.setup);
      } else if (name === "flow" && p.handle === 1 && step === "the request link's credit") {
        step = "the answer (register)";
        send(d.register);
      } else if (name === "transfer" && frame.payload) {
        socket.write(acceptFrame(Number(p.delivery_id)));
        const message = rhea.message.decode(frame.payload);
        const content = (message.body as { content?: Buffer } | undefined)?.content ?? Buffer.alloc(0);
        const body = parseOperation(content.toString("utf8"));
        const retryAfter = Number(message.application_properties?.["retry-after"] ?? 2);
        if (body?.status === "assigned") {
          finish(assignedOutcome(body, polls));
          return;
        }
        if (body?.status === "assigning" && typeof body.operationId === "string") {
          later(retryAfter, pollMessage(body.operationId, polls), "the answer (poll)");
          return;
        }
        fail(describeFailure(step, body, content.toString("utf8")));
      } else if (name === "disposition" && deliveryOutcome(p.state).name === "rejected") {
        const { error } = deliveryOutcome(p.state);
        // The SDK retries these two after info["retry-after"] (device-api.md §7.5).
        if (
          error?.condition === "com.microsoft:device-container-throttled" ||
          error?.condition === "amqp:internal-error"
        ) {
          later(Number(error.info?.["retry-after"] ?? 2), d.register, "the answer (register again)");
          return;
        }
        // The description carries the DPS error body.
        const body = parseOperation(error?.description ?? "");
        fail(describeFailure(`${step}: rejected ${String(error?.condition)}`, body, error?.description ?? ""));
      } else if (name === "close" || name === "detach" || name === "end") {
        fail(generic(`${step}: the service sent ${name}`));
      }
    };

    socket.on("data", (chunk: Buffer) => {
      if (settled) return;
      buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
      try {
        for (;;) {
          if (phase === "sasl-header" || phase === "amqp-header") {
            if (buffer.length < HEADER_BYTES) return;
            buffer = buffer.subarray(HEADER_BYTES);
            phase = phase === "sasl-header" ? "sasl" : "amqp";
            continue;
          }
          const frame = readFrame(buffer);
          if (!frame) return;
          buffer = buffer.subarray(frame.size);
          onFrame(frame);
          if (settled) return;
        }
      } catch (err) {
        fail(generic(`malformed AMQP from the server: ${(err as Error).message}`));
      }
    });
    wire.idle(REQUEST_TIMEOUT_MS, () => fail(`no ${step} within ${REQUEST_TIMEOUT_MS} ms`));
    socket.on("error", (err) => finish(err));
    socket.on("close", () => fail(`connection closed while waiting for ${step}`));
    socket.write(d.sasl ?? d.setup);
  });
}
