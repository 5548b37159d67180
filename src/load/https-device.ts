// A simulated device registering over HTTPS (device-api.md §5), each request on a fresh TLS
// connection, polling while `assigning`. Symmetric keys send the SAS token; X.509 devices send
// no Authorization and present their certificate in the endpoint's TLS context (§4.3).
import { randomUUID } from "node:crypto";
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import { type RequestOptions, request } from "node:https";
import type { SecureContext } from "node:tls";
import type { Endpoint } from "./dial.js";
import {
  API_VERSION,
  assignedOutcome,
  type DeviceIdentity,
  describeFailure,
  MAX_POLLS,
  type OperationBody,
  type Outcome,
  parseOperation,
  REQUEST_TIMEOUT_MS,
  registerBody,
} from "./load-run.js";

/** One device's precomputed register request. */
export interface HttpsDevice {
  registrationId: string;
  /** `{idScope}/registrations/{registrationId}`: the SAS resource and the path prefix. */
  resource: string;
  path: string;
  headers: OutgoingHttpHeaders;
  body: Buffer;
}

/** Build a device's request ahead of timing: headers and body as the SDK sends them (§5.1). */
export function prepareHttpsDevice(id: DeviceIdentity, host: string): HttpsDevice {
  const resource = `${id.idScope}/registrations/${id.registrationId}`;
  const body = registerBody(id);
  return {
    registrationId: id.registrationId,
    resource,
    path: `/${resource}/register?api-version=${API_VERSION}`,
    // The headers the Azure device SDK 1.9.1 sends, Request-Id aside; X.509: without Authorization.
    headers: {
      Accept: "application/json",
      "Content-Type": "application/json; charset=utf-8",
      ...(id.token ? { Authorization: id.token } : {}),
      "User-Agent": "azure-iot-provisioning-device/1.9.1",
      "Content-Length": String(body.length),
      Host: host,
    },
    body,
  };
}

/** An HTTPS endpoint; `caPerConnection` (the CA pem) passes `ca` on every request instead of the shared context. */
export type HttpsEndpoint = Endpoint & { caPerConnection?: string };

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

/** One request on its own TLS connection (`agent: false`: no keep-alive, no session reuse). */
function send(target: HttpsEndpoint, method: string, path: string, headers: OutgoingHttpHeaders, body: Buffer) {
  return new Promise<Reply>((resolve, reject) => {
    const options: RequestOptions & { secureContext?: SecureContext } = {
      host: target.host,
      port: target.port,
      servername: target.servername,
      method,
      path,
      headers: { ...headers, "Request-Id": randomUUID() },
      agent: false,
      timeout: REQUEST_TIMEOUT_MS,
    };
    // A context built once from the CA pem is the same trust as `ca`, without re-parsing the pem
    // for every connection (tls.connect accepts it; @types/node's RequestOptions does not list it).
    if (target.caPerConnection) options.ca = target.caPerConnection;
    else options.secureContext = target.secureContext;
    const req = request(options, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString("utf8") }),
      );
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    req.on("error", reject);
    req.end(body);
  });
}

const describe = (reply: Reply, body: OperationBody | undefined, step: string): string =>
  describeFailure(`${step}: HTTP ${reply.status}`, body, reply.text);

const POLL_BODY = Buffer.from("{}", "utf8");

/** Register one device, polling (each poll on a fresh connection) until it is no longer assigning. */
export async function registerHttps(target: HttpsEndpoint, d: HttpsDevice): Promise<Outcome> {
  let reply = await send(target, "PUT", d.path, d.headers, d.body);
  let body = parseOperation(reply.text);
  let polls = 0;
  while ((reply.status === 200 || reply.status === 202) && body?.status === "assigning") {
    if (typeof body.operationId !== "string") return { ok: false, why: describe(reply, body, "register") };
    if (polls >= MAX_POLLS) return { ok: false, why: `still assigning after ${MAX_POLLS} polls` };
    const retryAfter = Number(reply.headers["retry-after"] ?? 2); // the SDK's default is 2 s
    await new Promise((r) => setTimeout(r, (Number.isFinite(retryAfter) ? retryAfter : 2) * 1000));
    polls++;
    const path = `/${d.resource}/operations/${body.operationId}?api-version=${API_VERSION}`;
    reply = await send(target, "GET", path, { ...d.headers, "Content-Length": "2" }, POLL_BODY);
    body = parseOperation(reply.text);
  }
  if (reply.status === 200 && body?.status === "assigned") return assignedOutcome(body, polls);
  return { ok: false, why: describe(reply, body, polls > 0 ? "poll" : "register") };
}
