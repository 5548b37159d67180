// IoT Hub's AMQP link addresses and messages, from fixtures shaped as the device SDKs send them
// (azure-iot-device-amqp: endpoint paths, twin annotations, method properties, CBS put-token).
import assert from "node:assert/strict";
import { test } from "node:test";
import rhea from "rhea";
import { isHubLinkAddress, parseHubLinkAddress } from "../../src/builtin-hub/amqp-hub-links.js";
import {
  type AmqpMessage,
  cbsResponse,
  cloudToDeviceMessage,
  desiredPush,
  idText,
  methodRequest,
  methodResponseOf,
  putTokenOf,
  telemetryProperties,
  twinRequestOf,
  twinResponse,
  unbatch,
} from "../../src/builtin-hub/amqp-hub-messages.js";

/** The AMQP type a value is sent as (rhea's Typed), e.g. "SmallInt" for an int. */
const typeName = (v: unknown): string => (v as { type: { name: string } }).type.name;
/** Encodes and decodes as the wire would: what the peer reads. */
const overTheWire = (m: AmqpMessage): AmqpMessage =>
  rhea.message.decode(rhea.message.encode(m)) as unknown as AmqpMessage;

test("link addresses: a device's and a module's four nodes, CBS and the service's two", () => {
  assert.deepEqual(parseHubLinkAddress("/devices/d1/messages/events"), {
    kind: "device",
    deviceId: "d1",
    channel: "events",
  });
  assert.deepEqual(parseHubLinkAddress("/devices/edge%201/modules/%24edgeAgent/twin"), {
    kind: "device",
    deviceId: "edge 1",
    moduleId: "$edgeAgent",
    channel: "twin",
  });
  assert.deepEqual(parseHubLinkAddress("/devices/d1/methods/devicebound?api-version=2021-04-12"), {
    kind: "device",
    deviceId: "d1",
    channel: "methods",
  });
  assert.equal(parseHubLinkAddress("/devices/d1/messages/devicebound").kind, "device");
  // The C SDK writes its addresses with the hub's host name; some clients capitalise deviceBound.
  assert.deepEqual(parseHubLinkAddress("amqps://Hub-1.localhost/devices/d1/modules/m1/methods/deviceBound"), {
    kind: "device",
    deviceId: "d1",
    moduleId: "m1",
    channel: "methods",
    host: "hub-1.localhost",
  });
  assert.deepEqual(parseHubLinkAddress("$cbs"), { kind: "cbs" });
  assert.deepEqual(parseHubLinkAddress("/messages/devicebound"), { kind: "serviceDevicebound" });
  assert.deepEqual(parseHubLinkAddress("/messages/serviceBound/feedback"), { kind: "serviceFeedback" });
  for (const address of [
    undefined,
    "",
    "0ne00000001/registrations/dev-1",
    "/devices//messages/events",
    "/devices/d1/files",
    "/devices/%E0%A4%A/twin",
    "/devices/d1/modules/m1/methods",
  ]) {
    assert.equal(parseHubLinkAddress(address).kind, "unknown", String(address));
    assert.equal(isHubLinkAddress(address), false);
  }
});

test("telemetry: system properties from the message's own fields, a uuid id in its usual form, the module's output", () => {
  const m: AmqpMessage = {
    message_id: rhea.string_to_uuid("6f1b8f2e-7d55-4b8e-9a0e-3c9f2a1b0c4d"),
    correlation_id: "corr-1",
    content_type: "application/json",
    content_encoding: "utf-8",
    user_id: Buffer.from("dev-1"),
    absolute_expiry_time: new Date("2026-12-03T12:00:00Z"),
    application_properties: { alert: "high", level: 3, "iothub-outputname": "alerts" },
    body: rhea.message.data_section(Buffer.from("{}")),
  } as unknown as AmqpMessage;
  assert.deepEqual(telemetryProperties(overTheWire(m)), {
    system: {
      messageId: "6f1b8f2e-7d55-4b8e-9a0e-3c9f2a1b0c4d",
      correlationId: "corr-1",
      contentType: "application/json",
      contentEncoding: "utf-8",
      userId: "dev-1",
      expiryTimeUtc: "2026-12-03T12:00:00.000Z",
      outputName: "alerts",
    },
    app: { alert: "high", level: "3" },
  });
  assert.equal(idText(Buffer.from("0102", "hex")), "0102");
  assert.equal(idText(7), "7");
});

test("cloud-to-device: ids go as uuids when they look like one, with the ack, expiry and enqueued time", () => {
  const out = overTheWire(
    cloudToDeviceMessage({
      lockToken: "lock-1",
      deliveryCount: 2,
      message: {
        messageId: "6f1b8f2e-7d55-4b8e-9a0e-3c9f2a1b0c4d",
        correlationId: "plain-id",
        to: "/devices/d1/messages/devicebound",
        ack: "full",
        enqueuedTime: "2026-12-03T10:00:00.000Z",
        expiryTime: "2026-12-03T11:00:00.000Z",
        properties: { priority: "high" },
        contentType: "text/plain",
        body: Buffer.from("reboot"),
      },
    }),
  );
  assert.ok(Buffer.isBuffer(out.message_id), "a uuid comes back as its 16 bytes");
  assert.equal(idText(out.message_id), "6f1b8f2e-7d55-4b8e-9a0e-3c9f2a1b0c4d");
  assert.equal(out.correlation_id, "plain-id");
  assert.equal(out.to, "/devices/d1/messages/devicebound");
  assert.deepEqual(out.application_properties, { priority: "high", "iothub-ack": "full" });
  assert.equal((out.absolute_expiry_time as unknown as Date).toISOString(), "2026-12-03T11:00:00.000Z");
  assert.equal(out.content_type, "text/plain");
  assert.equal(out.message_annotations?.["iothub-deliverycount"], 2);
  assert.deepEqual(out.message_annotations?.["iothub-enqueuedtime"], new Date("2026-12-03T10:00:00.000Z"));
  assert.equal((out.body as { content: Buffer }).content.toString(), "reboot");
});

test("twin requests: the operation and resource annotations the SDK sends", () => {
  const req = (operation: string, resource?: string, body = " ") =>
    twinRequestOf({
      correlation_id: "c1",
      message_annotations: { operation, ...(resource ? { resource } : {}) },
      body: rhea.message.data_section(Buffer.from(body)),
    } as AmqpMessage);
  assert.deepEqual(req("GET"), { kind: "get" });
  const patch = req("PATCH", "/properties/reported", '{"fw":"1.0"}');
  assert.equal(patch.kind, "patchReported");
  assert.equal(patch.kind === "patchReported" && patch.body.toString(), '{"fw":"1.0"}');
  assert.deepEqual(req("PUT", "/notifications/twin/properties/desired"), { kind: "subscribeDesired" });
  assert.deepEqual(req("DELETE", "/notifications/twin/properties/desired"), { kind: "unsubscribeDesired" });
  const unknown = req("PATCH", "/properties/desired");
  assert.equal(unknown.kind, "unknown");
  assert.match(
    unknown.kind === "unknown" ? unknown.reason : "",
    /operation 'PATCH' on resource '\/properties\/desired'/,
  );
  assert.equal(twinRequestOf({} as AmqpMessage).kind, "unknown");
});

test("twin answers carry status as an int and version as a long; desired pushes carry no correlation id", () => {
  const answer = twinResponse("c1", 204, "", 5);
  // rhea picks the short encodings of int and long where the value fits.
  assert.match(typeName(answer.message_annotations?.status), /^(Small)?Int$/);
  assert.match(typeName(answer.message_annotations?.version), /^(Small)?Long$/);
  const read = overTheWire(answer);
  assert.equal(read.correlation_id, "c1");
  assert.deepEqual(read.message_annotations, { status: 204, version: 5 });
  const push = overTheWire(desiredPush({ interval: 9, $version: 4 }, 4));
  assert.equal(push.correlation_id, undefined);
  assert.deepEqual(JSON.parse((push.body as { content: Buffer }).content.toString()), { interval: 9, $version: 4 });
});

test("methods: the call names its method, the answer comes back under the call's uuid with IoThub-status", () => {
  const call = overTheWire(methodRequest("6f1b8f2e-7d55-4b8e-9a0e-3c9f2a1b0c4d", "reboot", '{"delay":5}'));
  assert.equal(call.application_properties?.["IoThub-methodname"], "reboot");
  assert.ok(Buffer.isBuffer(call.correlation_id), "sent as a uuid");
  const answer = methodResponseOf({
    correlation_id: call.correlation_id,
    application_properties: { "IoThub-status": rhea.types.wrap_int(200) },
    body: rhea.message.data_section(Buffer.from('{"ok":true}')),
  } as AmqpMessage);
  assert.deepEqual(answer, {
    requestId: "6f1b8f2e-7d55-4b8e-9a0e-3c9f2a1b0c4d",
    status: 200,
    body: Buffer.from('{"ok":true}'),
  });
  assert.deepEqual(methodResponseOf({ application_properties: { "IoThub-status": 200 } } as unknown as AmqpMessage), {
    refused: "a method answer needs the call's correlation id",
  });
  assert.deepEqual(methodResponseOf({ correlation_id: "x", application_properties: {} } as AmqpMessage), {
    refused: "a method answer needs an integer 'IoThub-status' property",
  });
});

test("CBS: put-token's token and audience; the answer's status-code is an AMQP int", () => {
  const request = {
    to: "$cbs",
    reply_to: "cbs",
    message_id: "m1",
    application_properties: { operation: "put-token", type: "servicebus.windows.net:sastoken", name: "hub/devices/d1" },
    body: "SharedAccessSignature sr=hub%2Fdevices%2Fd1&sig=x&se=1",
  } as AmqpMessage;
  assert.deepEqual(putTokenOf(request), {
    token: "SharedAccessSignature sr=hub%2Fdevices%2Fd1&sig=x&se=1",
    audience: "hub/devices/d1",
  });
  assert.deepEqual(putTokenOf({ ...request, application_properties: { operation: "delete-token" } }), {
    refused: "unsupported CBS operation 'delete-token'",
  });
  assert.deepEqual(putTokenOf({ ...request, body: "" }), { refused: "put-token carries the token as its body" });
  const reply = cbsResponse(request, 401, "no");
  assert.match(typeName(reply.application_properties?.["status-code"]), /^(Small)?Int$/);
  const read = overTheWire(reply);
  assert.equal(read.correlation_id, "m1");
  assert.equal(read.to, "cbs");
  assert.deepEqual(read.application_properties, { "status-code": 401, "status-description": "no" });
});

test("batches: a transfer in IoT Hub's batch format carries whole messages in its data sections", () => {
  const inner = (id: string) =>
    rhea.message.encode({ message_id: id, body: rhea.message.data_section(Buffer.from(id)) } as never);
  const payload = rhea.message.encode({ body: rhea.message.data_sections([inner("a"), inner("b")]) } as never);
  // rhea hands a transfer of another format over as its bytes.
  const messages = unbatch(payload, 0x80013700);
  assert.deepEqual(
    messages.map((m) => [m.message_id, (m.body as { content: Buffer }).content.toString()]),
    [
      ["a", "a"],
      ["b", "b"],
    ],
  );
  const plain = { message_id: "p", body: "x" } as unknown as AmqpMessage;
  assert.deepEqual(unbatch(plain, 0), [plain]);
  const notMessages = rhea.message.encode({ body: rhea.message.data_sections([Buffer.from([0xff, 0x01])]) } as never);
  assert.throws(() => unbatch(notMessages, 0x80013700));
});
