// The device MQTT topic grammar of IoT Hub, from topic strings (iothub-api.md §6.3-6.6).
import assert from "node:assert/strict";
import { test } from "node:test";
import { methodResponsePayload, parseMethodRequest } from "../../src/builtin-hub/direct-methods.js";
import { classifyPublish, grantFor, methodRequestTopic } from "../../src/builtin-hub/hub-topics.js";

test("publishes: telemetry, twin, and direct method answers with their status and $rid", () => {
  assert.deepEqual(classifyPublish("devices/d1/messages/events/a=1"), {
    kind: "telemetry",
    deviceId: "d1",
    bag: "a=1",
  });
  assert.deepEqual(classifyPublish("$iothub/twin/GET/?$rid=7"), { kind: "twinGet", rid: "7" });
  assert.deepEqual(classifyPublish("$iothub/methods/res/202/?$rid=4"), {
    kind: "methodResponse",
    rid: "4",
    status: 202,
  });
  assert.deepEqual(classifyPublish("$iothub/methods/res/abc/?$rid=4"), { kind: "unknown" });
  assert.deepEqual(classifyPublish("$iothub/methods/res/200/"), { kind: "unknown" }, "no $rid: nothing to answer");
  assert.equal(methodRequestTopic("reboot", "12"), "$iothub/methods/POST/reboot/?$rid=12");
  assert.equal(grantFor("$iothub/methods/POST/#", "d1", 1), 1);
  assert.equal(grantFor("$iothub/methods/POST/reboot", "d1", 1), 0x80);
});

test("a method request's defaults and bounds; a device's answer read as JSON when it is", () => {
  assert.deepEqual(parseMethodRequest({ methodName: "reboot" }), {
    methodName: "reboot",
    payload: null,
    responseTimeoutSeconds: 30,
    connectTimeoutSeconds: 0,
  });
  assert.equal(parseMethodRequest({ methodName: "m", responseTimeoutInSeconds: 300 }).responseTimeoutSeconds, 300);
  assert.throws(() => parseMethodRequest({ methodName: "m", responseTimeoutInSeconds: 4.5 }), /from 5 to 300/);
  assert.throws(() => parseMethodRequest({ methodName: "m", payload: "x".repeat(140_000) }), /over 131072 bytes/);
  assert.deepEqual(methodResponsePayload(Buffer.from('{"a":1}')), { a: 1 });
  assert.equal(methodResponsePayload(Buffer.from("plain")), "plain");
  assert.equal(methodResponsePayload(Buffer.alloc(0)), null);
});
