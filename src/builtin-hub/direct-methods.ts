// Direct methods (IoT Hub REST `POST /twins/{id}/methods`, iothub-api.md §6.6): the request as
// a back end sends it, checked, and its delivery to the device's live MQTT session, waiting for
// the device to connect (connectTimeoutInSeconds) and then for its answer
// (responseTimeoutInSeconds), with IoT Hub's bounds and errors.
import { ProvisioError } from "../domain/errors.js";
import { isObject } from "../domain/json.js";
import type { DeviceSessions } from "./device-sessions.js";

export interface MethodRequest {
  methodName: string;
  /** Sent to the device as JSON (null when none was given). */
  payload: unknown;
  responseTimeoutSeconds: number;
  connectTimeoutSeconds: number;
}

export interface MethodResult {
  /** The status the device answered with. */
  status: number;
  payload: unknown;
}

/** IoT Hub's bounds: a response within 5-300 s (default 30), a connection within 0-300 s (default 0). */
const RESPONSE_TIMEOUT = { min: 5, max: 300, default: 30 };
const CONNECT_TIMEOUT = { min: 0, max: 300, default: 0 };
/** A method's payload, request or response, is at most 128 KB (IoT Hub's quota). */
export const MAX_METHOD_PAYLOAD_BYTES = 128 * 1024;

const invalid = (detail: string) => new ProvisioError("hubArgumentInvalid", { detail });

function seconds(value: unknown, name: string, bounds: typeof RESPONSE_TIMEOUT): number {
  if (value === undefined || value === null) return bounds.default;
  if (typeof value !== "number" || !Number.isInteger(value) || value < bounds.min || value > bounds.max) {
    throw invalid(`'${name}' must be a whole number of seconds from ${bounds.min} to ${bounds.max}.`);
  }
  return value;
}

/** The request body, or a 400 that names the field. Pure. */
export function parseMethodRequest(body: unknown): MethodRequest {
  if (!isObject(body)) throw invalid('Send {"methodName": "...", "payload": ..., "responseTimeoutInSeconds": 30}.');
  const name = body.methodName;
  if (typeof name !== "string" || name === "" || name.length > 100 || /[/#+$\s]/.test(name)) {
    throw invalid("'methodName' must be 1-100 characters without '/', '#', '+', '$' or spaces.");
  }
  const payload = body.payload ?? null;
  if (Buffer.byteLength(JSON.stringify(payload)) > MAX_METHOD_PAYLOAD_BYTES) {
    throw invalid(`'payload' is over ${MAX_METHOD_PAYLOAD_BYTES} bytes.`);
  }
  return {
    methodName: name,
    payload,
    responseTimeoutSeconds: seconds(body.responseTimeoutInSeconds, "responseTimeoutInSeconds", RESPONSE_TIMEOUT),
    connectTimeoutSeconds: seconds(body.connectTimeoutInSeconds, "connectTimeoutInSeconds", CONNECT_TIMEOUT),
  };
}

/** What the device answered, parsed as JSON when it is JSON (the SDKs send JSON). Pure. */
export function methodResponsePayload(body: Buffer): unknown {
  if (body.length === 0) return null;
  const text = body.toString("utf8");
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Delivers the call to the device's session once it listens for methods, and waits for its answer. */
export async function invokeDirectMethod(
  sessions: DeviceSessions,
  deviceId: string,
  request: MethodRequest,
): Promise<MethodResult> {
  const session = await sessions.methodsListener(deviceId, request.connectTimeoutSeconds * 1000);
  if (!session) {
    const why = sessions.get(deviceId)
      ? "it is connected but not listening for methods"
      : request.connectTimeoutSeconds > 0
        ? `it did not connect within ${request.connectTimeoutSeconds} s`
        : "it is not connected";
    throw new ProvisioError("hubDeviceNotOnline", { id: deviceId, why });
  }
  return session.invokeMethod(request.methodName, JSON.stringify(request.payload), request.responseTimeoutSeconds);
}

/**
 * The direct method calls a device session sent and waits on, by request id (MQTT's `$rid`,
 * AMQP's correlation id): each is answered, times out (504), or fails when the device goes (404).
 */
export class PendingMethodCalls {
  readonly #pending = new Map<
    string,
    { name: string; resolve(r: MethodResult): void; reject(e: Error): void; timer: NodeJS.Timeout }
  >();

  constructor(private readonly deviceId: string) {}

  /** Sends the call with `send` and waits for its answer up to `timeoutSeconds`. */
  call(id: string, name: string, timeoutSeconds: number, send: () => void): Promise<MethodResult> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new ProvisioError("hubGatewayTimeout", { id: this.deviceId, method: name, seconds: timeoutSeconds }));
      }, timeoutSeconds * 1000);
      this.#pending.set(id, { name, resolve, reject, timer });
      send();
    });
  }

  /** The device answered; a late or unknown answer is dropped, as IoT Hub drops it. */
  answer(id: string, status: number, body: Buffer): void {
    const call = this.#pending.get(id);
    if (!call) return;
    this.#pending.delete(id);
    clearTimeout(call.timer);
    if (body.length > MAX_METHOD_PAYLOAD_BYTES) {
      call.reject(
        new ProvisioError("hubArgumentInvalid", {
          detail: `Device '${this.deviceId}' answered method '${call.name}' with more than ${MAX_METHOD_PAYLOAD_BYTES} bytes.`,
        }),
      );
    } else {
      call.resolve({ status, payload: methodResponsePayload(body) });
    }
  }

  /** The device went before answering: every waiting call fails. */
  failAll(): void {
    for (const [id, call] of this.#pending) {
      clearTimeout(call.timer);
      call.reject(
        new ProvisioError("hubDeviceNotOnline", { id: this.deviceId, why: "it disconnected before answering" }),
      );
      this.#pending.delete(id);
    }
  }
}
