// The Event Hubs-compatible endpoint's links on a built-in hub's AMQP connection (IoT Hub's
// built-in "events" endpoint, read with the Event Hubs SDKs): a reader on
// `{hub}/ConsumerGroups/{group}/Partitions/{id}` gets the partition's events from the position its
// selector filter names and then each new one, as the credit it gives allows; `{hub}/$management`
// answers what the hub and its partitions hold. The connection (amqp-hub-connection.ts) decides
// who may open them.
import type rhea from "rhea";
import type { AmqpMessage } from "./amqp-hub-messages.js";
import type { HubRuntime } from "./builtin-hubs.js";
import {
  eventHubInfo,
  eventMessage,
  type ManagementRequest,
  managementReply,
  partitionInfo,
} from "./event-hub-messages.js";
import { parseStartFilter, type StoredEvent } from "./event-hub-partitions.js";

const SELECTOR = "apache.org:selector-filter:string";
const EPOCH = "com.microsoft:epoch";

/** The selector filter's text: rhea hands a described value over as its value. */
function selectorOf(source: unknown): string | undefined {
  const filter = (source as { filter?: Record<string, unknown> } | undefined)?.filter;
  const raw = filter?.[SELECTOR];
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw === "string") return raw;
  const value = (raw as { value?: unknown }).value;
  return typeof value === "string" ? value : String(value);
}

/** Serves a partition reader until the link or the connection goes; a bad start refuses it. */
export function openPartitionReader(
  link: rhea.Sender,
  rt: HubRuntime,
  consumerGroup: string,
  partition: string,
): { refused: string; condition: string } | { pump(): void; stop(): void } {
  const partitions = rt.eventHub;
  if (!partitions.partition(partition)) {
    return {
      refused: `hub '${rt.hub.name}' has partitions ${partitions.ids.join(", ")}, not '${partition}'`,
      condition: "amqp:not-found",
    };
  }
  const start = parseStartFilter(selectorOf(link.source));
  if ("refused" in start) return { refused: start.refused, condition: "com.microsoft:argument-error" };
  const epochValue = (link as unknown as { remote?: { attach?: { properties?: Record<string, unknown> } } }).remote
    ?.attach?.properties?.[EPOCH];
  const epoch = epochValue === undefined || epochValue === null ? undefined : Number(epochValue);
  const release = partitions.claim(consumerGroup, partition, epoch, (why) =>
    link.close({ condition: "amqp:link:stolen", description: why }),
  );
  if (typeof release !== "function") return { refused: release.refused, condition: "amqp:link:stolen" };

  const queue: StoredEvent[] = partitions.since(partition, start);
  const pump = () => {
    while (queue.length > 0 && link.sendable()) link.send(eventMessage(queue.shift() as StoredEvent));
  };
  const unlisten = partitions.listen(partition, (e) => {
    queue.push(e);
    pump();
  });
  return {
    pump,
    stop: () => {
      unlisten();
      release();
    },
  };
}

/** Answers a `$management` READ for the hub `rt` (already authorized) on `replies`. */
export function answerManagement(
  request: Exclude<ManagementRequest, { refused: string }>,
  message: AmqpMessage,
  rt: HubRuntime,
  replies: rhea.Sender,
): void {
  if (request.kind === "eventhub") {
    replies.send(managementReply(message, 200, "OK", eventHubInfo(rt.hub.name, rt.eventHub)));
    return;
  }
  if (!rt.eventHub.partition(request.partition)) {
    replies.send(managementReply(message, 404, `hub '${rt.hub.name}' has no partition '${request.partition}'`));
    return;
  }
  replies.send(managementReply(message, 200, "OK", partitionInfo(rt.hub.name, request.partition, rt.eventHub)));
}
