// A device's DPS session over MQTT (device-api.md §6): register and operation-status requests are
// answered on `$dps/registrations/res/...`. Asks the device port only.
import type { IConnectPacket, IPublishPacket } from "mqtt-packet";
import { MAX_MESSAGE_BYTES, parseJson } from "../../domain/json.js";
import {
  type DeviceCredentials,
  type DevicePort,
  type DeviceReply,
  type DeviceSession,
  errorReply,
  isDeviceReply,
} from "../../provisioning/device-port.js";
import { CONNACK } from "./connack.js";
import { parseDpsRequest, parseDpsUsername, RESPONSE_FILTER, responseTopic } from "./dps-topics.js";
import type { MqttConnection } from "./mqtt-connection.js";

/**
 * CONNECT is accepted whenever the username names a scope and a registration id and the client
 * id repeats it; whether the device may register is answered on the response topic, as DPS does
 * (`$dps/registrations/res/401/?$rid=…` with 401002 after a successful CONNECT): a CONNACK has no
 * room for a reason, a DPS error body does. Only the network settings (IP filter, public network
 * access) refuse the CONNECT itself, before any credential is read.
 */
export async function acceptDpsDevice(
  conn: MqttConnection,
  connect: IConnectPacket,
  port: DevicePort,
  protocol: "mqtt" | "mqttws",
): Promise<void> {
  const parsed = parseDpsUsername(connect.username ?? "");
  if (!parsed || parsed.registrationId !== connect.clientId) {
    conn.connack(CONNACK.identifierRejected);
    conn.close("username must be {idScope}/registrations/{registrationId}/... with clientId = registrationId");
    return;
  }
  // The network settings are judged before any credential is read; CONNACK 5 says no more.
  if (!port.admitsFrom(parsed.idScope, conn.peer.remoteAddress)) {
    conn.connack(CONNACK.notAuthorized);
    conn.close("refused by the provisioning service's network settings");
    return;
  }
  // A rule written later that refuses this address ends the session too.
  const unwatch = port.watchAdmission(parsed.idScope, conn.peer.remoteAddress, () =>
    conn.close("refused by the provisioning service's network settings"),
  );
  conn.once("close", unwatch);
  const credentials = credentialsOf(connect, conn);
  const common = { ...parsed, credentials, sourceAddress: () => conn.peer.remoteAddress, protocol };
  // Credentials cannot change within a session: one successful attestation serves every request.
  // A refusal is not kept, so each request is answered with what holds now.
  let session: Promise<DeviceSession> | undefined;
  const attested = (): Promise<DeviceSession> => {
    if (session) return session;
    const attempt = port.openSession(common).then((r) => {
      if (r.ok) return r.session;
      throw r.reply;
    });
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
    const answer = (reply: DeviceReply) => {
      // ≥ 429 makes the SDK retry after retry-after; 4xx below that are final (device-api.md §6.3).
      const retryAfter =
        "retryAfter" in reply && (reply.status === 202 || reply.status >= 429) ? reply.retryAfter : undefined;
      conn.publish({
        topic: responseTopic(reply.status, request.rid, retryAfter),
        payload: JSON.stringify(reply.body),
        qos: 0,
      });
    };
    attested()
      .then((s) =>
        request.kind === "register"
          ? port.register({ ...common, body: parseJson(payload) }, s)
          : port.operationStatus(common, request.operationId, s),
      )
      .then(answer, (refusal: unknown) => answer(isDeviceReply(refusal) ? refusal : errorReply(refusal)));
  });
  conn.connack(CONNACK.accepted);
}

function credentialsOf(connect: IConnectPacket, conn: MqttConnection): DeviceCredentials {
  if (connect.password) return { kind: "sas", token: connect.password.toString() };
  const chain = conn.peer.certificateChain;
  return chain.length > 0 ? { kind: "x509", chain } : { kind: "none" };
}
