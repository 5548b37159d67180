// The Event Hubs-compatible endpoint's pure parts: addresses, start filters as the Event Hubs SDKs
// write them, partitions with sequence numbers and the epoch rule, the event's annotations, the
// management requests, and Event Hubs' way of signing with a key's text.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { test } from "node:test";
import rhea from "rhea";
import { parseSasToken, signatureMatches } from "../../src/attestation/sas-token.js";
import { parseHubLinkAddress } from "../../src/builtin-hub/amqp-hub-links.js";
import type { AmqpMessage } from "../../src/builtin-hub/amqp-hub-messages.js";
import { eventMessage, managementRequestOf } from "../../src/builtin-hub/event-hub-messages.js";
import {
  EventHubPartitions,
  PARTITION_COUNT,
  parseStartFilter,
  partitionOf,
} from "../../src/builtin-hub/event-hub-partitions.js";
import type { TelemetryMessage } from "../../src/builtin-hub/telemetry-log.js";

const telemetry = (deviceId: string, n: number): TelemetryMessage => ({
  hub: "hub-1",
  deviceId,
  enqueuedTimeUtc: new Date(Date.UTC(2026, 11, 3, 10, 0, n)).toISOString(),
  transport: "mqtt",
  properties: { system: { messageId: `m${n}`, contentType: "application/json" }, app: { k: `v${n}` } },
  body: Buffer.from(JSON.stringify({ n })),
});

test("addresses: the hub's $management node and its partitions, named by the hub's name", () => {
  assert.deepEqual(parseHubLinkAddress("hub-1/$management"), { kind: "management", entity: "hub-1" });
  assert.deepEqual(parseHubLinkAddress("$management"), { kind: "management" });
  assert.deepEqual(parseHubLinkAddress("hub-1/ConsumerGroups/$Default/Partitions/3"), {
    kind: "eventHubPartition",
    entity: "hub-1",
    consumerGroup: "$Default",
    partition: "3",
  });
  assert.equal(parseHubLinkAddress("hub-1/consumergroups/cg/partitions/0").kind, "eventHubPartition");
  assert.equal(parseHubLinkAddress("hub-1/Partitions/0").kind, "unknown");
});

test("start filters: offsets, sequence numbers, enqueued times and @latest; anything else is refused", () => {
  assert.deepEqual(parseStartFilter("amqp.annotation.x-opt-offset > '-1'"), {
    kind: "offset",
    value: "-1",
    inclusive: false,
  });
  assert.deepEqual(parseStartFilter("amqp.annotation.x-opt-offset >= '7'"), {
    kind: "offset",
    value: "7",
    inclusive: true,
  });
  assert.deepEqual(parseStartFilter("amqp.annotation.x-opt-offset > '@latest'"), { kind: "latest" });
  assert.deepEqual(parseStartFilter("amqp.annotation.x-opt-sequence-number > '5'"), {
    kind: "sequenceNumber",
    value: 5,
    inclusive: false,
  });
  assert.deepEqual(parseStartFilter("amqp.annotation.x-opt-enqueued-time > '1796288000000'"), {
    kind: "enqueuedTime",
    value: 1796288000000,
  });
  assert.deepEqual(parseStartFilter(undefined), { kind: "latest" });
  assert.ok("refused" in parseStartFilter("amqp.annotation.x-opt-offset < '3'"));
  assert.ok("refused" in parseStartFilter("amqp.annotation.x-opt-offset > 'abc'"));
});

test("partitions: a device stays in one; sequence numbers and offsets count per partition; readers start where they asked", () => {
  const p = new EventHubPartitions();
  assert.deepEqual(
    p.ids,
    Array.from({ length: PARTITION_COUNT }, (_, i) => String(i)),
  );
  const id = String(partitionOf("dev-a"));
  assert.equal(partitionOf("dev-a"), partitionOf("dev-a"));
  const heard: number[] = [];
  const stop = p.listen(id, (e) => heard.push(e.sequenceNumber));
  for (let n = 0; n < 3; n++) p.append(telemetry("dev-a", n));
  stop();
  p.append(telemetry("dev-a", 3));
  assert.deepEqual(heard, [0, 1, 2]);
  assert.deepEqual(
    p.since(id, { kind: "offset", value: "-1", inclusive: false }).map((e) => e.sequenceNumber),
    [0, 1, 2, 3],
  );
  assert.deepEqual(
    p.since(id, { kind: "sequenceNumber", value: 2, inclusive: true }).map((e) => e.offset),
    ["2", "3"],
  );
  assert.deepEqual(
    p.since(id, { kind: "enqueuedTime", value: Date.UTC(2026, 11, 3, 10, 0, 1) }).map((e) => e.sequenceNumber),
    [2, 3],
  );
  assert.deepEqual(p.since(id, { kind: "latest" }), []);
  assert.deepEqual(p.info(id), {
    begin: 0,
    last: 3,
    lastOffset: "3",
    lastTime: new Date(Date.UTC(2026, 11, 3, 10, 0, 3)),
    empty: false,
  });
});

test("epochs: a higher one takes the partition, a lower one or none is refused while it holds it", () => {
  const p = new EventHubPartitions();
  const kicked: string[] = [];
  const plain = p.claim("$Default", "0", undefined, (why) => kicked.push(`plain: ${why}`));
  assert.equal(typeof plain, "function");
  const first = p.claim("$Default", "0", 1, (why) => kicked.push(`first: ${why}`));
  assert.equal(typeof first, "function");
  assert.deepEqual(kicked, ["plain: a reader with epoch 1 took partition 0 of consumer group '$Default'"]);
  assert.deepEqual(
    p.claim("$default", "0", 0, () => undefined),
    {
      refused: "a reader with epoch 1 holds partition 0 of consumer group '$default'",
    },
  );
  assert.ok(!("refused" in (p.claim("other", "0", undefined, () => undefined) as object)), "groups are apart");
  (first as () => void)();
  assert.equal(typeof p.claim("$Default", "0", undefined, () => undefined), "function");
});

test("an event carries IoT Hub's annotations and the device's properties", () => {
  const p = new EventHubPartitions();
  p.append(telemetry("dev-b", 1));
  const [stored] = p.since(String(partitionOf("dev-b")), { kind: "offset", value: "-1", inclusive: false });
  assert.ok(stored);
  const read = rhea.message.decode(rhea.message.encode(eventMessage(stored))) as unknown as AmqpMessage;
  assert.equal(read.message_id, "m1");
  assert.equal(read.content_type, "application/json");
  assert.deepEqual(read.application_properties, { k: "v1" });
  const a = read.message_annotations as Record<string, unknown>;
  assert.equal(a["x-opt-sequence-number"], 0);
  assert.equal(a["x-opt-offset"], "0");
  assert.deepEqual(a["x-opt-enqueued-time"], new Date(Date.UTC(2026, 11, 3, 10, 0, 1)));
  assert.equal(a["iothub-connection-device-id"], "dev-b");
  assert.equal(a["iothub-message-source"], "Telemetry");
  assert.equal((read.body as { content: Buffer }).content.toString(), '{"n":1}');
});

test("management requests: READ of the hub or a partition, with or without their own token", () => {
  const req = (props: Record<string, unknown>) => managementRequestOf({ application_properties: props } as AmqpMessage);
  assert.deepEqual(req({ operation: "READ", type: "com.microsoft:eventhub", name: "hub-1", security_token: "t" }), {
    kind: "eventhub",
    name: "hub-1",
    token: "t",
  });
  assert.deepEqual(req({ operation: "READ", type: "com.microsoft:partition", name: "hub-1", partition: "2" }), {
    kind: "partition",
    name: "hub-1",
    partition: "2",
  });
  assert.ok("refused" in req({ operation: "CREATE", type: "com.microsoft:eventhub" }));
  assert.ok("refused" in req({ operation: "READ", type: "com.microsoft:queue" }));
});

test("Event Hubs tokens are signed with the key's text, IoT Hub's with its base64 bytes", () => {
  const key = Buffer.alloc(32, 3).toString("base64");
  const sr = encodeURIComponent("sb://hub-1.localhost/hub-1");
  const se = 1_900_000_000;
  const sig = createHmac("sha256", Buffer.from(key, "utf8")).update(`${sr}\n${se}`).digest("base64");
  const token = parseSasToken(`SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=${se}&skn=iothubowner`);
  assert.ok(token);
  assert.equal(signatureMatches(token, [key]), false);
  assert.equal(signatureMatches(token, [key], "all", true), true);
});
