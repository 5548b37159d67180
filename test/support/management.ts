// Management API calls the tests need (there is no Azure SDK for provisio's management API).
import { request } from "node:https";
import { createSasToken } from "../../src/attestation/sas-token.js";
import { formatConnectionString, parseConnectionString } from "../../src/domain/connection-string.js";
import type { ProvisioProcess } from "./provisio-process.js";

export interface HttpReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json(): unknown;
}

/** One HTTPS request to the server, with a SAS token from `connectionString` unless `auth` is given. */
export function call(
  p: ProvisioProcess,
  method: string,
  path: string,
  options: {
    body?: string | Buffer;
    headers?: Record<string, string>;
    auth?: string | null;
    connectionString?: string;
    host?: string;
    /** The source address to connect from (a 127.0.0.x, so IP filter rules can tell clients apart). */
    localAddress?: string;
  } = {},
): Promise<HttpReply> {
  const cs = parseConnectionString(options.connectionString ?? p.info.serviceConnectionString);
  if (!cs) throw new Error("bad connection string");
  const host = options.host ?? cs.hostName;
  const auth =
    options.auth === undefined
      ? createSasToken(cs.key, host, Math.floor(Date.now() / 1000) + 3600, cs.keyName)
      : options.auth;
  const headers: Record<string, string> = {
    host,
    ...(auth !== null ? { authorization: auth } : {}),
    ...options.headers,
  };
  if (options.body !== undefined) {
    headers["content-type"] ??= "application/json; charset=utf-8";
    headers["content-length"] = String(Buffer.byteLength(options.body));
  }
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port: p.info.ports.https,
        servername: host.replace(/:\d+$/, ""),
        ca: p.ca,
        method,
        path,
        headers,
        agent: false,
        ...(options.localAddress ? { localAddress: options.localAddress } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) });
        });
      },
    );
    req.on("error", reject);
    req.end(options.body);
  });
}

/** Add a shared access policy to the primary instance; returns its connection string. */
export async function addPolicy(p: ProvisioProcess, keyName: string, rights: string): Promise<string> {
  const listed = await call(p, "POST", "/provisioningServices/provisio/listkeys");
  if (listed.status !== 200) throw new Error(`listkeys: ${listed.status} ${listed.text}`);
  const policies = (listed.json() as { value: unknown[] }).value;
  const put = await call(p, "PUT", "/provisioningServices/provisio", {
    body: JSON.stringify({ properties: { authorizationPolicies: [...policies, { keyName, rights }] } }),
  });
  if (put.status !== 200) throw new Error(`PUT instance: ${put.status} ${put.text}`);
  const after = (await call(p, "POST", "/provisioningServices/provisio/listkeys")).json() as {
    value: { keyName: string; primaryKey: string }[];
  };
  const policy = after.value.find((x) => x.keyName === keyName);
  if (!policy) throw new Error("policy not created");
  return formatConnectionString({ hostName: p.info.host, keyName, key: policy.primaryKey });
}
