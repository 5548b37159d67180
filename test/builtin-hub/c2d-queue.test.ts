// The cloud-to-device queue of a hub, on a clock of its own: limits, locks, expiry, delivery
// count and which endings produce feedback for which `iothub-ack`.
import assert from "node:assert/strict";
import { test } from "node:test";
import { deviceboundMessage } from "../../src/builtin-hub/amqp-service-links.js";
import {
  type Ack,
  C2dQueues,
  type FeedbackRecord,
  LOCK_MS,
  MAX_DELIVERY_COUNT,
  MAX_QUEUED_PER_DEVICE,
} from "../../src/builtin-hub/c2d-queue.js";
import { c2dPropertyBag } from "../../src/builtin-hub/hub-topics.js";

function queues() {
  let now = Date.parse("2026-12-03T10:00:00Z");
  const feedback: FeedbackRecord[] = [];
  const q = new C2dQueues(
    (r) => feedback.push(r),
    () => now,
  );
  const msg = (id: string, ack: Ack = "full", expiryTime?: string) => ({
    messageId: id,
    to: "/devices/d/messages/devicebound",
    ack,
    properties: {},
    body: Buffer.from(id),
    ...(expiryTime ? { expiryTime } : {}),
  });
  return { q, feedback, msg, advance: (ms: number) => (now += ms) };
}

test("at most 50 wait; each is handed out under a lock, once at a time", () => {
  const { q, msg } = queues();
  for (let i = 0; i < MAX_QUEUED_PER_DEVICE; i++) assert.ok(q.enqueue("d", msg(`m${i}`)));
  assert.equal(q.enqueue("d", msg("one-more")), false);
  const a = q.receive("d");
  const b = q.receive("d");
  assert.equal(a?.message.messageId, "m0");
  assert.equal(b?.message.messageId, "m1", "a locked message is not handed out again");
  assert.ok(a && q.complete("d", a.lockToken));
  assert.equal(q.complete("d", a?.lockToken ?? ""), false, "settled once");
  assert.equal(q.count("d"), MAX_QUEUED_PER_DEVICE - 1);
});

test("an abandoned message or a lock that ran out comes back; after 10 deliveries it dies", () => {
  const { q, msg, feedback, advance } = queues();
  q.enqueue("d", msg("m"));
  const first = q.receive("d");
  assert.ok(first && q.abandon("d", first.lockToken));
  assert.equal(q.receive("d")?.deliveryCount, 2);
  assert.equal(q.receive("d"), undefined, "still locked");
  advance(LOCK_MS + 1);
  for (let n = 3; n <= MAX_DELIVERY_COUNT; n++) {
    assert.equal(q.receive("d")?.deliveryCount, n);
    advance(LOCK_MS + 1);
  }
  assert.equal(q.receive("d"), undefined);
  assert.deepEqual(
    feedback.map((f) => f.statusCode),
    ["DeliveryCountExceeded"],
  );
});

test("expiry, rejection and success give feedback as iothub-ack asks", () => {
  const { q, msg, feedback, advance } = queues();
  q.enqueue("d", msg("expires", "negative", "2026-12-03T10:00:30Z"));
  q.enqueue("d", msg("quiet", "none"));
  q.enqueue("d", msg("positive", "positive"));
  advance(31_000);
  const quiet = q.receive("d");
  assert.equal(quiet?.message.messageId, "quiet", "the expired one is gone");
  assert.ok(quiet && q.reject("d", quiet.lockToken));
  const positive = q.receive("d");
  assert.ok(positive && q.complete("d", positive.lockToken));
  assert.deepEqual(
    feedback.map((f) => `${f.originalMessageId}:${f.statusCode}`),
    ["expires:Expired", "positive:Success"],
  );
});

test("a devicebound AMQP message: its device, ack, properties and body; a wrong 'to' is refused", () => {
  const parsed = deviceboundMessage({
    to: "/devices/dev%201/messages/devicebound",
    message_id: "mid",
    application_properties: { "iothub-ack": "FULL", color: "red", n: 3 },
    body: { typecode: 0x75, content: Buffer.from("hello") },
  } as never);
  assert.ok(!("refused" in parsed));
  assert.equal(parsed.deviceId, "dev 1");
  assert.equal(parsed.message.ack, "full");
  assert.deepEqual(parsed.message.properties, { color: "red", n: "3" });
  assert.equal(parsed.message.body.toString(), "hello");
  assert.match(
    (deviceboundMessage({ to: "/devices/x/messages/events" } as never) as { refused: string }).refused,
    /'to' must be/,
  );
  assert.equal(
    c2dPropertyBag({
      messageId: "m 1",
      to: "/devices/d/messages/devicebound",
      ack: "full",
      expiryTime: "2026-12-03T11:00:00.000Z",
      properties: { k: "v&w" },
    }),
    "%24.mid=m%201&%24.to=%2Fdevices%2Fd%2Fmessages%2Fdevicebound&%24.exp=2026-12-03T11%3A00%3A00.000Z&iothub-ack=full&k=v%26w",
  );
});
