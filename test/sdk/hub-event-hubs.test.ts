// The built-in hub's Event Hubs-compatible endpoint (issue "The built-in hub", telemetry out): the
// real @azure/event-hubs EventHubConsumerClient reads what a real azure-iot-device client sent,
// with IoT Hub's annotations, from the beginning and live, through the connection string
// provisio.json gives. The reader runs in a process of its own (test/support/event-hub-reader.ts).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import deviceSdk from "azure-iot-device";
import deviceMqtt from "azure-iot-device-mqtt";
import { type DeviceClient, hubOf, registryClient } from "../support/hub-clients.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";

const { Client, Message } = deviceSdk;
const { Mqtt } = deviceMqtt;
const READER = join(fileURLToPath(new URL(".", import.meta.url)), "../support/event-hub-reader.js");

interface ReadEvent {
  partitionId: string;
  body: unknown;
  properties: Record<string, unknown>;
  systemProperties: Record<string, unknown>;
  sequenceNumber: number;
  offset: string;
  messageId: string;
  contentType: string;
}

/** Runs the reader until it has printed `wanted` events (or an error); `onReady` runs once it reads. */
function readEvents(
  p: ProvisioProcess,
  connectionString: string,
  wanted: number,
  onReady: () => Promise<void> = async () => undefined,
  transport: "amqp" | "ws" = "amqp",
): Promise<{ lines: unknown[]; events: ReadEvent[] }> {
  const endpoint =
    transport === "ws" ? `https://127.0.0.1:${p.info.ports.https}` : `amqps://127.0.0.1:${p.info.ports.amqp}`;
  const child = spawn(process.execPath, [READER, connectionString, endpoint, String(wanted), transport], {
    env: { ...process.env, NODE_EXTRA_CA_CERTS: p.info.caFile },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines: unknown[] = [];
  const events: ReadEvent[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`the reader got ${events.length} of ${wanted} events in time: ${JSON.stringify(lines)}`));
    }, 30_000);
    createInterface({ input: child.stdout }).on("line", (line) => {
      const value = JSON.parse(line) as unknown;
      lines.push(value);
      if (value === "ready") void onReady().catch(reject);
      const event = (value as { event?: ReadEvent }).event;
      if (event) events.push(event);
      if ((value as { error?: string }).error) {
        clearTimeout(timer);
        child.kill();
        resolve({ lines, events });
      }
    });
    child.on("exit", () => {
      clearTimeout(timer);
      resolve({ lines, events });
    });
  });
}

describe("the built-in hub's Event Hubs-compatible endpoint", () => {
  let p: ProvisioProcess;
  const open: DeviceClient[] = [];

  before(async () => {
    p = await startProvisio();
  });
  after(async () => {
    for (const c of open) await c.close().catch(() => undefined);
    await p?.dispose();
  });

  const device = async (deviceId: string): Promise<DeviceClient> => {
    const key = (await registryClient(p).create({ deviceId })).responseBody.authentication?.symmetricKey?.primaryKey;
    const client = Client.fromConnectionString(
      `HostName=${hubOf(p).hostName};DeviceId=${deviceId};SharedAccessKey=${key};GatewayHostName=127.0.0.1:${p.info.ports.mqtt}`,
      Mqtt,
    );
    open.push(client);
    await client.setOptions({ ca: p.ca.toString() });
    await client.open();
    return client;
  };

  const message = (n: number) => {
    const m = new Message(JSON.stringify({ n }));
    m.messageId = `eh-${n}`;
    m.contentType = "application/json";
    m.contentEncoding = "utf-8";
    m.properties.add("level", `L${n}`);
    return m;
  };

  test("EventHubConsumerClient reads what was sent before it started and what is sent after, with IoT Hub's annotations", async () => {
    const client = await device("eh-dev-1");
    await client.sendEvent(message(1));
    await client.sendEvent(message(2));
    const hub = hubOf(p);
    assert.match(
      hub.eventHubConnectionString,
      /^Endpoint=sb:\/\/hub-1\.localhost\/;SharedAccessKeyName=iothubowner;SharedAccessKey=.+;EntityPath=hub-1$/,
    );
    const { lines, events } = await readEvents(p, hub.eventHubConnectionString, 3, () =>
      client.sendEvent(message(3)).then(() => undefined),
    );

    const properties = (lines[0] as { properties: { name: string; partitionIds: string[] } }).properties;
    assert.deepEqual(properties, { name: "hub-1", partitionIds: ["0", "1", "2", "3"] });
    const partitions = lines.filter((l) => (l as { partition?: unknown }).partition) as {
      partition: { partitionId: string; isEmpty: boolean; lastEnqueuedSequenceNumber: number };
    }[];
    assert.equal(partitions.length, 4);
    assert.equal(partitions.filter((x) => !x.partition.isEmpty).length, 1, "one device, one partition");

    assert.deepEqual(
      events.map((e) => [e.body, e.messageId, e.sequenceNumber, e.offset]),
      [
        [{ n: 1 }, "eh-1", 0, "0"],
        [{ n: 2 }, "eh-2", 1, "1"],
        [{ n: 3 }, "eh-3", 2, "2"],
      ],
    );
    const [first] = events;
    assert.deepEqual(first?.properties, { level: "L1" });
    assert.equal(first?.contentType, "application/json");
    assert.equal(first?.systemProperties["iothub-connection-device-id"], "eh-dev-1");
    assert.equal(first?.systemProperties["iothub-message-source"], "Telemetry");
    assert.equal(typeof first?.systemProperties["iothub-enqueuedtime"], "number");
  });

  test("over WebSockets on the HTTPS port (/$servicebus/websocket), as the Event Hubs SDKs dial it", async () => {
    const client = await device("eh-dev-ws");
    await client.sendEvent(message(7));
    // The reader takes the earliest events of every partition: the first test's device may share one.
    const { events, lines } = await readEvents(p, hubOf(p).eventHubConnectionString, 4, async () => undefined, "ws");
    const mine = events.filter((e) => e.systemProperties["iothub-connection-device-id"] === "eh-dev-ws");
    assert.deepEqual(
      mine.map((e) => e.body),
      [{ n: 7 }],
      JSON.stringify(lines),
    );
  });

  test("a wrong key is refused with the reason", async () => {
    const wrong = hubOf(p).eventHubConnectionString.replace(
      /SharedAccessKey=[^;]+/,
      `SharedAccessKey=${Buffer.alloc(32, 9).toString("base64")}`,
    );
    const { lines } = await readEvents(p, wrong, 1);
    const error = lines.find((l) => (l as { error?: string }).error) as { error: string } | undefined;
    assert.ok(error, JSON.stringify(lines));
    assert.match(error.error, /signature does not verify|Unauthorized|401/i);
  });
});
