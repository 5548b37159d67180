// `provisio hub monitor-events`: stream a built-in hub's telemetry as JSON lines, like
// `az iot hub monitor-events`. Reads the server's provisio.json (or takes a connection string).
import { readFileSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";
import { createSasToken } from "../attestation/sas-token.js";
import { parseConnectionString } from "../domain/connection-string.js";
import type { ServeInfo } from "../server.js";

export interface MonitorOptions {
  dataDir: string;
  hub?: string;
  deviceId?: string;
  /** Print the messages the hub kept before streaming new ones. */
  recent?: boolean;
  connectionString?: string;
  caFile?: string;
  /** Where to dial: defaults to provisio.json's host and HTTPS port. */
  address?: string;
  port?: number;
}

interface Target {
  connectionString: string;
  ca: Buffer;
  address: string;
  port: number;
}

function target(o: MonitorOptions): Target {
  if (o.connectionString) {
    if (!o.caFile) throw new Error("--connection-string needs --ca-file too.");
    return {
      connectionString: o.connectionString,
      ca: readFileSync(o.caFile),
      address: o.address ?? "localhost",
      port: o.port ?? 443,
    };
  }
  const file = join(o.dataDir, "provisio.json");
  let info: ServeInfo;
  try {
    info = JSON.parse(readFileSync(file, "utf8")) as ServeInfo;
  } catch {
    throw new Error(`Cannot read ${file}: is 'provisio serve --data-dir ${o.dataDir}' running?`);
  }
  const hub = o.hub ? info.hubs.find((h) => h.name === o.hub || h.hostName === o.hub) : info.hubs[0];
  if (!hub)
    throw new Error(`No built-in hub '${o.hub ?? ""}'; known: ${info.hubs.map((h) => h.name).join(", ") || "none"}.`);
  return {
    connectionString: hub.connectionString,
    ca: readFileSync(info.caFile),
    address: o.address ?? info.host,
    port: o.port ?? info.ports.https,
  };
}

function get(t: Target, path: string): Promise<import("node:http").IncomingMessage> {
  const cs = parseConnectionString(t.connectionString);
  if (!cs) throw new Error("The hub connection string is not HostName=...;SharedAccessKeyName=...;SharedAccessKey=...");
  const token = createSasToken(cs.key, cs.hostName, Math.floor(Date.now() / 1000) + 24 * 3600, cs.keyName);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: t.address,
        port: t.port,
        path,
        ca: t.ca,
        servername: cs.hostName,
        headers: { host: cs.hostName, authorization: token },
      },
      resolve,
    );
    req.on("error", reject);
    req.end();
  });
}

/** Streams until the server goes away or the process is stopped; writes one JSON line a message. */
export async function monitorEvents(o: MonitorOptions, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  const t = target(o);
  const filter = o.deviceId ? `?deviceId=${encodeURIComponent(o.deviceId)}` : "";
  if (o.recent) {
    const res = await get(t, `/_provisio/messages${filter}`);
    let text = "";
    for await (const chunk of res) text += chunk;
    if (res.statusCode !== 200) throw new Error(`The hub refused: ${res.statusCode} ${text}`);
    for (const m of JSON.parse(text) as unknown[]) out.write(`${JSON.stringify(m)}\n`);
  }
  const res = await get(t, `/_provisio/events${filter}`);
  if (res.statusCode !== 200) {
    let text = "";
    for await (const chunk of res) text += chunk;
    throw new Error(`The hub refused: ${res.statusCode} ${text}`);
  }
  let buffered = "";
  for await (const chunk of res) {
    buffered += chunk.toString();
    let end = buffered.indexOf("\n\n");
    while (end >= 0) {
      const event = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      for (const line of event.split("\n")) if (line.startsWith("data: ")) out.write(`${line.slice(6)}\n`);
      end = buffered.indexOf("\n\n");
    }
  }
}
