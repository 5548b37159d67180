// Reads a built-in hub's Event Hubs-compatible endpoint with the real @azure/event-hubs
// EventHubConsumerClient, in a process of its own: the client trusts only Node's CAs, so the test
// CA comes in through NODE_EXTRA_CA_CERTS, which must be set before Node starts.
// argv: connection string, custom endpoint (amqps://127.0.0.1:port, or https://…:port with "ws"),
// events to wait for, and "ws" to read over WebSockets.
// Prints JSON lines: {"properties": …}, {"partition": …} per partition, "ready", then each event.
import { EventHubConsumerClient, earliestEventPosition } from "@azure/event-hubs";
import WebSocket from "ws";

const [connectionString = "", endpoint = "", wanted = "1", transport = "amqp"] = process.argv.slice(2);
const print = (v: unknown) => process.stdout.write(`${JSON.stringify(v)}\n`);
// `node --test dist/test/` loads every file under test/, this one too, without arguments: then
// there is nothing to read.
if (!connectionString) process.exit(0);
// No retries: a refusal is what the test wants to see, at once.
const client = new EventHubConsumerClient("$Default", connectionString, {
  customEndpointAddress: endpoint,
  retryOptions: { maxRetries: 0, timeoutInMs: 10_000 },
  ...(transport === "ws" ? { webSocketOptions: { webSocket: WebSocket } } : {}),
});
try {
  const properties = await client.getEventHubProperties();
  print({ properties: { name: properties.name, partitionIds: properties.partitionIds } });
  for (const id of properties.partitionIds) print({ partition: await client.getPartitionProperties(id) });
  let seen = 0;
  await new Promise<void>((resolve, reject) => {
    const subscription = client.subscribe(
      {
        processInitialize: async () => undefined,
        processEvents: async (events, context) => {
          for (const e of events) {
            print({
              event: {
                partitionId: context.partitionId,
                body: e.body,
                properties: e.properties,
                systemProperties: e.systemProperties,
                sequenceNumber: e.sequenceNumber,
                offset: e.offset,
                enqueuedTimeUtc: e.enqueuedTimeUtc,
                messageId: e.messageId,
                contentType: e.contentType,
              },
            });
            seen++;
          }
          if (seen >= Number(wanted)) void subscription.close().then(resolve, reject);
        },
        processError: async (err) => {
          print({ error: `${(err as Error).name}: ${(err as Error).message}` });
        },
      },
      { startPosition: earliestEventPosition, maxWaitTimeInSeconds: 1 },
    );
    print("ready");
  });
} catch (err) {
  print({ error: `${(err as Error).name}: ${(err as Error).message}` });
} finally {
  await client.close();
}
