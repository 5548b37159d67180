// The DPS AMQP grammar from bytes: requests as azure-iot-provisioning-device-amqp 1.9.1 encoded
// them (captured on the wire, device-api.md §7.3), answers and rejections as we encode them.
import assert from "node:assert/strict";
import { test } from "node:test";
import rhea from "rhea";
import { ProvisioError } from "../../../src/domain/errors.js";
import { errorReply, operationReply } from "../../../src/provisioning/device-port.js";
import {
  type AmqpMessage,
  bodyBytes,
  conditionOf,
  parseDeviceAddress,
  rejectionOf,
  requestOf,
  responseOf,
  sameDevice,
} from "../../../src/transports/amqp/dps-messages.js";

/** A register: header, properties (string correlation id), application properties, one data section. */
const REGISTER_HEX =
  "00537045005373d00000002f000000064040404040a12431393666346139612d323532322d343032392d616466652d613933656433386534633062" +
  "005374d10000004700000004a115696f746470732d6f7065726174696f6e2d74797065a10f696f746470732d7265676973746572a118696f7464" +
  "70732d666f726365526567697374726174696f6e42005375a0437b22726567697374726174696f6e4964223a2273796d2d6465762d3031222c22" +
  "7061796c6f6164223a7b226d6f64656c4964223a2264746d693a746573743b31227d7d";

/** An operation-status request: the operation id as an application property, an amqp-value "" body. */
const STATUS_HEX =
  "00537045005373d00000002f000000064040404040a12465633830393365612d376135642d343533322d623237642d656234313737303230633231" +
  "005374d10000008500000004a115696f746470732d6f7065726174696f6e2d74797065a11a696f746470732d6765742d6f7065726174696f6e73" +
  "7461747573a113696f746470732d6f7065726174696f6e2d6964a137342e303161323336613537373532303030312e30333936353266362d3564" +
  "64612d343663332d623536652d363838633037643864326361005377a100";

type ErrorReply = Extract<ReturnType<typeof errorReply>, { kind: "error" }>;
const refusal = (error: ProvisioError) => errorReply(error) as ErrorReply;

const decode = (hex: string) => rhea.message.decode(Buffer.from(hex, "hex")) as AmqpMessage;

test("a captured register decodes to a register request with its JSON body", () => {
  const message = decode(REGISTER_HEX);
  assert.equal(message.correlation_id, "196f4a9a-2522-4029-adfe-a93ed38e4c0b");
  const request = requestOf(message);
  assert.equal(request.kind, "register");
  if (request.kind !== "register") return;
  assert.deepEqual(JSON.parse(request.body.toString()), {
    registrationId: "sym-dev-01",
    payload: { modelId: "dtmi:test;1" },
  });
});

test("a captured status request names its operation", () => {
  assert.deepEqual(requestOf(decode(STATUS_HEX)), {
    kind: "operationStatus",
    operationId: "4.01a236a577520001.039652f6-5dda-46c3-b56e-688c07d8d2ca",
  });
});

test("a request without a known operation type, or a status request without an id, is unknown with the reason", () => {
  const none = requestOf({ application_properties: {} });
  assert.equal(none.kind, "unknown");
  assert.match(none.kind === "unknown" ? none.reason : "", /iotdps-operation-type' must be iotdps-register/);
  const other = requestOf({ application_properties: { "iotdps-operation-type": "iotdps-delete" } });
  assert.match(other.kind === "unknown" ? other.reason : "", /not "iotdps-delete"/);
  const noId = requestOf({ application_properties: { "iotdps-operation-type": "iotdps-get-operationstatus" } });
  assert.match(noId.kind === "unknown" ? noId.reason : "", /iotdps-operation-id' must name the operation/);
});

test("body bytes: data sections, amqp-value strings and binaries; anything else is empty", () => {
  assert.equal(bodyBytes(rhea.message.data_section(Buffer.from("{}"))).toString(), "{}");
  assert.equal(
    bodyBytes([rhea.message.data_section(Buffer.from("{")), rhea.message.data_section(Buffer.from("}"))]).toString(),
    "{}",
  );
  assert.equal(bodyBytes("text").toString(), "text");
  assert.equal(bodyBytes(Buffer.from("raw")).toString(), "raw");
  assert.equal(bodyBytes(42).length, 0);
  assert.equal(bodyBytes(undefined).length, 0);
});

test("the link address and the SASL identity: {idScope}/registrations/{registrationId}", () => {
  assert.deepEqual(parseDeviceAddress("0ne00000A0A/registrations/dev-1"), {
    idScope: "0ne00000A0A",
    registrationId: "dev-1",
  });
  // The C SDK's link addresses (prov_transport_amqp_common.c): the same, behind amqps://{host}/.
  assert.deepEqual(parseDeviceAddress("amqps://dps.example.net/0ne00000A0A/registrations/dev-1"), {
    idScope: "0ne00000A0A",
    registrationId: "dev-1",
  });
  for (const bad of [
    undefined,
    "",
    "0ne00000A0A/registrations/",
    "0ne00000A0A/devices/dev-1",
    "a/registrations/b/c",
    "https://h/s/registrations/d",
  ]) {
    assert.equal(parseDeviceAddress(bad), undefined, String(bad));
  }
  assert.ok(sameDevice({ idScope: "s", registrationId: "Dev-1" }, { idScope: "s", registrationId: "dev-1" }));
  assert.ok(!sameDevice({ idScope: "s", registrationId: "dev-1" }, { idScope: "t", registrationId: "dev-1" }));
});

test("an answer echoes the correlation id, carries one data section of JSON, the status and retry-after", () => {
  const reply = operationReply(
    {
      operationId: "op-1",
      registrationId: "dev-1",
      status: "assigning",
      registrationState: { registrationId: "dev-1", status: "assigning" },
      createdDateTimeUtc: "2026-01-01T00:00:00.000Z",
    },
    3,
  );
  assert.notEqual(reply.kind, "error");
  if (reply.kind === "error") return;
  const bytes = rhea.message.encode(responseOf(reply, "corr-1", "iotdps-register"));
  const back = rhea.message.decode(bytes) as unknown as AmqpMessage & { body: { typecode: number; content: Buffer } };
  // A string stays a string: the SDK matches answers to requests by that value and type (§7.4).
  assert.equal(back.correlation_id, "corr-1");
  assert.equal(back.body.typecode, 0x75, "one data section");
  assert.deepEqual(JSON.parse(back.body.content.toString()), {
    operationId: "op-1",
    status: "assigning",
    registrationState: { registrationId: "dev-1", status: "assigning" },
  });
  assert.deepEqual(back.application_properties, {
    "iotdps-operation-type": "iotdps-register",
    "iotdps-status": "assigning",
    "retry-after": "3",
  });
});

/** The encoded properties section (descriptor 0x73) of a message: up to the next section's descriptor. */
function propertiesSection(message: Buffer): Buffer {
  const start = message.indexOf(Buffer.from([0x00, 0x53, 0x73]));
  const ends = [0x74, 0x75, 0x77]
    .map((code) => message.indexOf(Buffer.from([0x00, 0x53, code]), start + 3))
    .filter((at) => at > start);
  return message.subarray(start, Math.min(...ends));
}

test("uuid, binary and ulong correlation ids come back as the same AMQP type and value", () => {
  const reply = operationReply({
    operationId: "op-1",
    registrationId: "dev-1",
    status: "assigned",
    registrationState: { registrationId: "dev-1", status: "assigned" },
    createdDateTimeUtc: "2026-01-01T00:00:00.000Z",
  });
  if (reply.kind === "error") return assert.fail("not an error");
  const uuid = rhea.types.wrap_uuid(Buffer.from("41ff643ddde24c1cb4911aee623b9e43", "hex"));
  for (const id of [uuid, rhea.types.wrap_binary(Buffer.from("abc")), rhea.types.wrap_ulong(42)]) {
    const request = rhea.message.encode({ correlation_id: id, body: "" });
    const received = rhea.message.decode(request) as unknown as AmqpMessage;
    const answer = rhea.message.encode(responseOf(reply, received.correlation_id, "iotdps-register"));
    assert.deepEqual(propertiesSection(answer), propertiesSection(request), "byte for byte");
  }
});

test("a refusal becomes a rejection: the condition the SDKs know, the DPS body as description", () => {
  const unauthorized = rejectionOf(
    refusal(new ProvisioError("unauthorized", { detail: "the signature does not verify" })),
  );
  assert.equal(unauthorized.condition, "amqp:unauthorized-access");
  const body = JSON.parse(unauthorized.description) as { errorCode: number; message: string };
  assert.equal(body.errorCode, 401002);
  assert.match(body.message, /signature does not verify/);
  assert.equal(unauthorized.info, undefined, "nothing to retry");

  const throttled = rejectionOf(refusal(new ProvisioError("throttled", {}, 7)));
  // The SDKs retry these two conditions after info["retry-after"] seconds (§7.5).
  assert.equal(throttled.condition, "com.microsoft:device-container-throttled");
  assert.deepEqual(throttled.info, { "retry-after": 7 });
  assert.equal(conditionOf(503), "amqp:internal-error");
  assert.equal(conditionOf(404), "amqp:not-found");
  assert.equal(conditionOf(400), "com.microsoft:argument-error");
  assert.equal(conditionOf(413), "amqp:link:message-size-exceeded");
});
