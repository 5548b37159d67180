// A device's DPS session over MQTT (device-api.md §6): CONNECT attests, then register and
// operation-status requests are answered on `$dps/registrations/res/...`. Calls the engine only.
import type { IConnectPacket, IPublishPacket } from "mqtt-packet";
import { errorBody, toProvisioError } from "../../domain/errors.js";
import { MAX_MESSAGE_BYTES, parseJson } from "../../domain/json.js";
import type { DeviceCredentials } from "../../provisioning/find-enrollment.js";
import type { OperationReply, RegistrationEngine, SessionAttestation } from "../../provisioning/registration-engine.js";
import { parseDpsRequest, parseDpsUsername, RESPONSE_FILTER, responseTopic } from "./dps-topics.js";
import type { MqttConnection } from "./mqtt-connection.js";

/** CONNACK code (MQTT 3.1.1 §3.2.2.3). */
const IDENTIFIER_REJECTED = 2;

function operationBody(reply: OperationReply): string {
  const { operation } = reply;
  return JSON.stringify({
    operationId: operation.operationId,
    status: operation.status,
    ...(operation.registrationState ? { registrationState: operation.registrationState } : {}),
  });
}

/**
 * CONNECT is accepted whenever the username names a scope and a registration id and the client
 * id repeats it; whether the device may register is answered on the response topic, as DPS does
 * (`$dps/registrations/res/401/?$rid=…` with 401002 after a successful CONNECT): a CONNACK has no
 * room for a reason, a DPS error body does.
 */
export async function acceptDpsDevice(
  conn: MqttConnection,
  connect: IConnectPacket,
  engine: RegistrationEngine,
): Promise<void> {
  const parsed = parseDpsUsername(connect.username ?? "");
  if (!parsed || parsed.registrationId !== connect.clientId) {
    conn.connack(IDENTIFIER_REJECTED);
    conn.close("username must be {idScope}/registrations/{registrationId}/... with clientId = registrationId");
    return;
  }
  const credentials: DeviceCredentials = connect.password
    ? { sasToken: connect.password.toString(), certificateChain: [] }
    : { certificateChain: conn.peer.certificateChain };
  const common = { ...parsed, credentials, sourceAddress: () => conn.peer.remoteAddress };
  // Credentials cannot change within a session: one successful attestation serves every request.
  // A refusal is not kept, so each request is answered with what holds now.
  let session: Promise<SessionAttestation> | undefined;
  const attested = (): Promise<SessionAttestation> => {
    if (session) return session;
    const attempt = engine.authenticate(common);
    attempt.catch(() => {
      if (session === attempt) session = undefined;
    });
    session = attempt;
    return attempt;
  };

  conn.on("subscribe", (p) => {
    conn.suback(
      p.messageId ?? 0,
      p.subscriptions.map((s) => (s.topic === RESPONSE_FILTER ? Math.min(s.qos, 1) : 0x80)),
    );
  });
  conn.on("unsubscribe", (p) => conn.unsuback(p.messageId ?? 0));
  conn.on("publish", (packet: IPublishPacket) => {
    if (packet.qos === 1 && packet.messageId !== undefined) conn.puback(packet.messageId);
    const payload = typeof packet.payload === "string" ? Buffer.from(packet.payload) : packet.payload;
    if (payload.length > MAX_MESSAGE_BYTES) {
      conn.close(`a request over ${MAX_MESSAGE_BYTES} bytes`);
      return;
    }
    const request = parseDpsRequest(packet.topic);
    if (request.kind === "unknown") return; // not a DPS request: nothing to answer
    const reply = (status: number, body: string, retryAfter?: number) =>
      conn.publish({ topic: responseTopic(status, request.rid, retryAfter), payload: body, qos: 0 });
    const work = attested().then((s) =>
      request.kind === "register"
        ? engine.register({ ...common, body: parseJson(payload) }, s)
        : engine.operationStatus(common, request.operationId, s),
    );
    work.then(
      (r) => reply(r.final ? 200 : 202, operationBody(r), r.final ? undefined : (r.retryAfter ?? 1)),
      (err: unknown) => {
        const e = toProvisioError(err);
        // ≥ 429 makes the SDK retry after retry-after; 4xx below that are final (device-api.md §6.3).
        reply(e.status, JSON.stringify(errorBody(e)), e.status >= 429 ? (e.retryAfterSeconds ?? 1) : undefined);
      },
    );
  });
  conn.connack(0);
}
