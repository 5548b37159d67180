// Simulated devices registering over AMQP 1.0 on TLS (device-api.md §7), each on a fresh TLS
// connection: SASL PLAIN (SAS token) → outcome; open, begin, the answer link with credit and the
// request link → the service's credit; the register message → the answer (`assigning`: poll with
// iotdps-get-operationstatus after retry-after; a rejection the SDK retries: register again), then
// close. The steps wait for each other as the Azure SDK's do. Raw frames, no client library.
import { connect } from "node:tls";
import rhea from "rhea";
import { createSasToken } from "../src/attestation/sas-token.js";
import { deriveDeviceKey } from "../src/attestation/symmetric-key.js";
import {
  acceptFrame,
  close,
  compositeName,
  HEADER_BYTES,
  type ReadFrame,
  readFrame,
  SASL_HEADER,
  saslPlain,
  setupFrames,
  transferBytes,
} from "../test/support/amqp-frames.js";
import { describeFailure, generic, MAX_POLLS, type Outcome, parseOperation, REQUEST_TIMEOUT_MS } from "./load.js";
import type { MqttTarget } from "./load-mqtt.js";

/** One device's precomputed bytes. */
export interface AmqpDevice {
  registrationId: string;
  sasl: Buffer;
  setup: Buffer;
  register: Buffer;
}

export function prepareAmqpDevices(spec: {
  idScope: string;
  groupKey: string;
  run: string;
  indices: number[];
}): AmqpDevice[] {
  const se = Math.floor(Date.now() / 1000) + 3600;
  return spec.indices.map((i) => {
    const registrationId = `bench-amqp-${spec.run}-${i}`;
    const address = `${spec.idScope}/registrations/${registrationId}`;
    const token = createSasToken(deriveDeviceKey(spec.groupKey, registrationId), address, se, "registration");
    return {
      registrationId,
      sasl: Buffer.concat([SASL_HEADER, saslPlain(address, token)]),
      setup: setupFrames(address),
      register: registerMessage(registrationId),
    };
  });
}

const registerMessage = (registrationId: string): Buffer =>
  rhea.message.encode({
    correlation_id: `register-${registrationId}`,
    application_properties: { "iotdps-operation-type": "iotdps-register", "iotdps-forceRegistration": false },
    body: rhea.message.data_section(Buffer.from(JSON.stringify({ registrationId }))),
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

export function registerAmqp(target: MqttTarget, d: AmqpDevice): Promise<Outcome> {
  return new Promise<Outcome>((resolve, reject) => {
    const socket = connect({
      host: "127.0.0.1",
      port: target.port,
      servername: "localhost",
      secureContext: target.secureContext,
    });
    socket.setNoDelay(true);
    let buffer: Buffer = Buffer.alloc(0);
    let phase: Phase = "sasl-header";
    let step = "SASL outcome";
    let settled = false;
    let delivery = 0;
    let polls = 0;
    let retryTimer: NodeJS.Timeout | undefined;

    const finish = (outcome: Outcome | Error): void => {
      if (settled) return;
      settled = true;
      if (retryTimer) clearTimeout(retryTimer);
      socket.setTimeout(0);
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
          fail(`SASL outcome ${String(p.code)}`);
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
          finish({ ok: true, polls });
          return;
        }
        if (body?.status === "assigning" && typeof body.operationId === "string") {
          later(retryAfter, pollMessage(body.operationId, polls), "the answer (poll)");
          return;
        }
        fail(describeFailure(step, body, content.toString("utf8")));
      } else if (name === "disposition" && compositeName(p.state) === "rejected") {
        const error = (p.state as { error?: { condition?: string; info?: Record<string, unknown> } }).error;
        // The SDK retries these two after info["retry-after"] (device-api.md §7.5).
        if (
          error?.condition === "com.microsoft:device-container-throttled" ||
          error?.condition === "amqp:internal-error"
        ) {
          later(Number(error.info?.["retry-after"] ?? 2), d.register, "the answer (register again)");
          return;
        }
        fail(generic(`${step}: rejected ${String(error?.condition)}`));
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
    socket.setTimeout(REQUEST_TIMEOUT_MS, () => fail(`no ${step} within ${REQUEST_TIMEOUT_MS} ms`));
    socket.on("error", (err) => finish(err));
    socket.on("close", () => fail(`connection closed while waiting for ${step}`));
    socket.write(d.sasl);
  });
}
