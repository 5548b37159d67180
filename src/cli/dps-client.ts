// A small HTTPS client for provisio's management and service APIs, used by the CLI. Where to
// dial and how to sign come from the server's provisio.json (`--data-dir`) or from a service
// connection string plus the CA that signed the server certificate (`--connection-string`,
// `--ca-file`). Every request carries a fresh SAS token for the connection string's HostName.
import { readFileSync } from "node:fs";
import { request } from "node:https";
import { isIP } from "node:net";
import { join } from "node:path";
import { createSasToken } from "../attestation/sas-token.js";
import { parseConnectionString, type SharedAccessConnectionString } from "../domain/connection-string.js";
import type { ServeInfo } from "../server.js";

export interface DpsClientOptions {
  /** The running server's data directory (holds provisio.json). */
  dataDir: string;
  /** A service connection string with the rights the commands need, instead of provisio.json's. */
  connectionString?: string;
  /**
   * The CA (PEM) that signed the server certificate. Without it, a connection string is checked
   * against the system's trust (and NODE_EXTRA_CA_CERTS), as for Azure's own DPS.
   */
  caFile?: string;
  /** Where to dial: default provisio.json's host, or the connection string's HostName. */
  address?: string;
  /** HTTPS port: default provisio.json's, or 443 with a connection string. */
  port?: number;
}

export interface DpsTarget {
  credentials: SharedAccessConnectionString;
  /** Undefined: the system's trust. */
  ca: Buffer | undefined;
  address: string;
  port: number;
}

export interface DpsReply {
  status: number;
  text: string;
  /** The parsed body; `undefined` when empty or not JSON. */
  body: unknown;
  headers: Record<string, string | string[] | undefined>;
}

/** A refusal from the server, carrying its message. */
export class DpsError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly errorCode?: number,
  ) {
    super(message);
    this.name = "DpsError";
  }
}

const TOKEN_LIFETIME_SECONDS = 3600;
const TIMEOUT_MS = 30_000;

function credentialsOf(text: string): SharedAccessConnectionString {
  const cs = parseConnectionString(text);
  if (!cs) throw new Error("The connection string is not HostName=...;SharedAccessKeyName=...;SharedAccessKey=...");
  return cs;
}

function readCa(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new Error(`Cannot read the CA file ${file}: ${(err as Error).message}`);
  }
}

export function resolveTarget(o: DpsClientOptions): DpsTarget {
  if (o.connectionString) {
    const credentials = credentialsOf(o.connectionString);
    const ca = o.caFile ? readCa(o.caFile) : undefined;
    const [host, port] = credentials.hostName.split(":");
    return {
      credentials,
      ca,
      address: o.address ?? host ?? credentials.hostName,
      port: o.port ?? (port ? Number(port) : 443),
    };
  }
  const file = join(o.dataDir, "provisio.json");
  let info: ServeInfo;
  try {
    info = JSON.parse(readFileSync(file, "utf8")) as ServeInfo;
  } catch {
    throw new Error(
      `Cannot read ${file}: is 'provisio serve --data-dir ${o.dataDir}' running? Or pass --connection-string and --ca-file.`,
    );
  }
  return {
    credentials: credentialsOf(info.serviceConnectionString),
    ca: o.caFile ? readCa(o.caFile) : readCa(info.caFile),
    address: o.address ?? info.host,
    port: o.port ?? info.ports.https,
  };
}

/** Why a request got no answer, and what to do about it. */
function unreachable(
  address: string,
  port: number,
  err: NodeJS.ErrnoException,
  ca: Buffer | undefined,
  hostName: string,
): string {
  if (err.code === "ERR_TLS_CERT_ALTNAME_INVALID") {
    return `${address}:${port} is not '${hostName}': its certificate names other hosts. Use a connection string whose HostName is this server's (\`provisio connection-string show\`, or provisio.json's serviceConnectionString).`;
  }
  const tls = /certificate|self.signed|UNABLE_TO|CERT_/i.test(`${err.code ?? ""} ${err.message}`);
  const hint = !tls
    ? err.code === "ECONNREFUSED"
      ? " Is the server running there? Pass --address and --port for another."
      : ""
    : ca
      ? " The server's certificate is not signed by the --ca-file given."
      : " Pass --ca-file with the CA that signed the server certificate (provisio.json's caFile for a local Provisio).";
  return `Cannot reach ${address}:${port}: ${err.message}.${hint}`;
}

/** The server's message from a DPS error body, or the raw text. */
function messageOf(reply: DpsReply): string {
  const b = reply.body;
  if (typeof b === "object" && b !== null && "message" in b && typeof b.message === "string") return b.message;
  return reply.text.trim() || `HTTP ${reply.status}`;
}

export class DpsClient {
  constructor(readonly target: DpsTarget) {}

  /** The same server, signing as another policy (another instance's, for `--dps-name`). */
  as(credentials: SharedAccessConnectionString): DpsClient {
    return new DpsClient({ ...this.target, credentials });
  }

  static from(o: DpsClientOptions): DpsClient {
    return new DpsClient(resolveTarget(o));
  }

  /** One request; resolves with whatever status the server answered. */
  send(method: string, path: string, options: { body?: unknown; headers?: Record<string, string> } = {}) {
    const { credentials: cs, ca, address, port } = this.target;
    const token = createSasToken(
      cs.key,
      cs.hostName,
      Math.floor(Date.now() / 1000) + TOKEN_LIFETIME_SECONDS,
      cs.keyName,
    );
    // SNI carries names only (RFC 6066); Node warns when given an address.
    const serverName = cs.hostName.replace(/:\d+$/, "");
    const text = options.body === undefined ? undefined : JSON.stringify(options.body);
    const headers: Record<string, string> = {
      host: cs.hostName,
      authorization: token,
      accept: "application/json",
      ...(text !== undefined
        ? { "content-type": "application/json; charset=utf-8", "content-length": String(Buffer.byteLength(text)) }
        : {}),
      ...options.headers,
    };
    return new Promise<DpsReply>((resolve, reject) => {
      const req = request(
        {
          host: address,
          port,
          method,
          path,
          ...(ca ? { ca } : {}),
          ...(isIP(serverName) ? {} : { servername: serverName }),
          headers,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("error", reject);
          res.on("end", () => {
            const body = Buffer.concat(chunks).toString("utf8");
            let parsed: unknown;
            try {
              parsed = body === "" ? undefined : JSON.parse(body);
            } catch {
              parsed = undefined;
            }
            resolve({ status: res.statusCode ?? 0, text: body, body: parsed, headers: res.headers });
          });
        },
      );
      req.setTimeout(TIMEOUT_MS, () =>
        req.destroy(new Error(`No answer from ${address}:${port} in ${TIMEOUT_MS} ms.`)),
      );
      req.on("error", (err: NodeJS.ErrnoException) =>
        reject(new Error(unreachable(address, port, err, ca, serverName))),
      );
      req.end(text);
    });
  }

  /** Like send, but a status of 400 or above becomes a DpsError with the server's message. */
  async call(
    method: string,
    path: string,
    options: { body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<unknown> {
    return (await this.reply(method, path, options)).body;
  }

  /** Like call, with the whole reply (its headers: paging). */
  async reply(
    method: string,
    path: string,
    options: { body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<DpsReply> {
    const reply = await this.send(method, path, options);
    if (reply.status >= 400) {
      const b = reply.body;
      const code =
        typeof b === "object" && b !== null && "errorCode" in b && typeof b.errorCode === "number"
          ? b.errorCode
          : undefined;
      throw new DpsError(reply.status, messageOf(reply), code);
    }
    return reply;
  }

  /**
   * A service API query (service-api.md §3.5), every page until `top` items (all when undefined):
   * x-ms-max-item-count out, x-ms-continuation back until the last page.
   */
  async query(path: string, top?: number): Promise<unknown[]> {
    const items: unknown[] = [];
    let continuation: string | undefined;
    do {
      const want = top === undefined ? 100 : Math.min(100, top - items.length);
      const headers: Record<string, string> = {
        "x-ms-max-item-count": String(want),
        ...(continuation ? { "x-ms-continuation": continuation } : {}),
      };
      const reply = await this.reply("POST", path, { body: { query: "*" }, headers });
      if (Array.isArray(reply.body)) items.push(...reply.body);
      const next = reply.headers["x-ms-continuation"];
      continuation = typeof next === "string" && next !== "" ? next : undefined;
    } while (continuation && (top === undefined || items.length < top));
    return top === undefined ? items : items.slice(0, top);
  }
}
