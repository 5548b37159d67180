// An example custom allocation webhook (behaviors.md §4.5): the "toaster / heat pump" function of the DPS
// custom allocation tutorial and how-to (seed 003), as a plain Node HTTP server instead of an Azure Function.
//
//   node dist/examples/custom-allocation-webhook/server.js --port 8080 [--host 0.0.0.0] [--code SECRET]
//
// Point an enrollment at it with allocationPolicy "custom" and
// customAllocationDefinition { webhookUrl: "http://HOST:8080/api/allocate?code=SECRET", apiVersion: "2021-10-01" }.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

export interface ExampleWebhookOptions {
  /** 0 (the default) lets the OS choose. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Substring naming toaster hubs (env TOASTER_HUB_MATCH, default "toasters"). */
  toasterMatch?: string;
  /** Substring naming heat pump hubs (env HEATPUMP_HUB_MATCH, default "heatpumps"). */
  heatpumpMatch?: string;
  /** When set, calls must carry `?code=<this>` like an Azure Function key, else 401 (env WEBHOOK_CODE). */
  code?: string;
  /** Where to write the function-style log lines; silent by default. */
  log?: (line: string) => void;
}

export interface ExampleWebhook {
  url: string;
  close(): Promise<void>;
  /** Every request body received (parsed JSON, or the raw text when it was not JSON). */
  requests: unknown[];
}

const MAX_BODY_BYTES = 96 * 1024;

/** A device type the function recognizes: which registration ids, which hubs, which initial twin. */
interface DeviceKind {
  name: string;
  hubsLabel: string;
  idMarkers: string[];
  hubMatch: string;
  initialTwin: { tags: Record<string, unknown>; properties: { desired: Record<string, unknown> } };
}

type Answer = { status: number; json: unknown } | { status: number; text: string };

export function startExampleWebhook(options: ExampleWebhookOptions = {}): Promise<ExampleWebhook> {
  const kinds: DeviceKind[] = [
    {
      name: "toaster",
      hubsLabel: "toasters",
      idMarkers: ["-contoso-tstrsd-", "contoso-toaster"],
      hubMatch: options.toasterMatch ?? process.env.TOASTER_HUB_MATCH ?? "toasters",
      initialTwin: {
        tags: { deviceType: "toaster" },
        properties: { desired: { state: "ready", darknessSetting: "medium" } },
      },
    },
    {
      name: "heat pump",
      hubsLabel: "heat pumps",
      idMarkers: ["-contoso-hpsd-", "contoso-heatpump"],
      hubMatch: options.heatpumpMatch ?? process.env.HEATPUMP_HUB_MATCH ?? "heatpumps",
      initialTwin: {
        tags: { deviceType: "heatpump" },
        properties: { desired: { state: "on", temperatureSetting: "65" } },
      },
    },
  ];
  const code = options.code ?? process.env.WEBHOOK_CODE;
  const log = options.log ?? (() => {});
  const requests: unknown[] = [];

  const server = createServer((req, res) => {
    readBody(req)
      .then((text) => {
        if (text === undefined) return reply(res, { status: 413, text: "Request body too large." });
        const body = parseJson(text);
        requests.push(body ?? text);
        if (req.method !== "POST") return reply(res, { status: 405, text: "Use POST." });
        if (code !== undefined && new URL(req.url ?? "/", "http://localhost").searchParams.get("code") !== code) {
          log("Rejected: missing or wrong function key");
          return reply(res, { status: 401, text: "" });
        }
        log(`Request.Body: ${text}`);
        const answer = allocate(body, kinds, log);
        log(`Response: ${"json" in answer ? JSON.stringify(answer.json) : answer.text}`);
        reply(res, answer);
      })
      .catch(() => res.destroy());
  });

  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      const { address, port } = server.address() as AddressInfo;
      const host = address.includes(":") ? `[${address}]` : address;
      resolve({
        url: `http://${host}:${port}/api/allocate`,
        requests,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

/** The function body of the how-to's HttpTrigger1 (C# script), step for step. */
function allocate(body: unknown, kinds: DeviceKind[], log: (line: string) => void): Answer {
  const data = isObject(body) ? body : {};
  const context = isObject(data.deviceRuntimeContext) ? data.deviceRuntimeContext : {};
  const regId = context.registrationId;
  if (typeof regId !== "string") {
    log("Registration ID : NULL");
    return { status: 400, text: "Registration ID not provided for the device." };
  }
  const hubs = data.linkedHubs;
  if (!Array.isArray(hubs)) {
    log("linkedHubs : NULL");
    return { status: 400, text: "No hub group defined for the enrollment." };
  }
  const kind = kinds.find((k) => k.idMarkers.some((marker) => regId.includes(marker)));
  if (kind === undefined) {
    log("Unknown device registration");
    return { status: 400, text: "Unrecognized device registration." };
  }
  // Like the how-to: walk every linked hub and keep the last one whose name matches.
  let selected: string | undefined;
  for (const hub of hubs) {
    log(`linkedHub : ${String(hub)}`);
    if (typeof hub === "string" && hub.includes(kind.hubMatch)) selected = hub;
  }
  if (selected === undefined) {
    log(`No ${kind.hubsLabel} hub among the linked hubs (looking for '${kind.hubMatch}')`);
    return { status: 400, text: `No ${kind.hubsLabel} hub found for the enrollment.` };
  }
  log(`Selected ${kind.name} hub : ${selected}`);
  return {
    status: 200,
    json: {
      iotHubHostName: selected,
      initialTwin: kind.initialTwin,
      payload: { receivedPayload: context.payload ?? null, allocatedBy: "example" },
    },
  };
}

function reply(res: ServerResponse, answer: Answer): void {
  const json = "json" in answer;
  const body = json ? JSON.stringify(answer.json) : answer.text;
  res.writeHead(answer.status, {
    "content-type": json ? "application/json; charset=utf-8" : "text/plain; charset=utf-8",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

/** The request text, or undefined when it exceeds MAX_BODY_BYTES. */
function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on("end", () => resolve(size > MAX_BODY_BYTES ? undefined : Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: "string", default: process.env.PORT ?? "8080" },
      host: { type: "string", default: "127.0.0.1" },
      code: { type: "string" },
    },
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`--port must be 0-65535, not ${values.port}`);
  const webhook = await startExampleWebhook({
    port,
    host: values.host,
    ...(values.code !== undefined ? { code: values.code } : {}),
    log: (line) => console.log(`${new Date().toISOString()} ${line}`),
  });
  console.log(`Custom allocation webhook listening on ${webhook.url}`);
  const stop = (): void => {
    webhook.close().then(() => process.exit(0));
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
