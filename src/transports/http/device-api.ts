// The HTTPS device API (device-api.md §5, §11.8): register, operation status, registration
// status lookup. Decodes the envelope, asks the device port, writes its reply; nothing else.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { TLSSocket } from "node:tls";
import { ProvisioError } from "../../domain/errors.js";
import { parseJson } from "../../domain/json.js";
import { readBody } from "../../http/body.js";
import type { RequestPath } from "../../http/request-path.js";
import { sendJson } from "../../http/respond.js";
import type { DeviceCredentials, DevicePort, DeviceReply } from "../../provisioning/device-port.js";
import { peerCertificateChain } from "../../security/tls-peer.js";

/** `/{idScope}/registrations/...`: the device API's paths. */
export const isDeviceApiPath = (path: RequestPath): boolean =>
  path.lower[1] === "registrations" && path.lower.length >= 3;

function credentialsOf(req: IncomingMessage): DeviceCredentials {
  const token = req.headers.authorization;
  if (token) return { kind: "sas", token };
  // X.509 devices send no Authorization header: only then is the TLS chain worth copying out.
  const chain = peerCertificateChain(req.socket as TLSSocket);
  return chain.length > 0 ? { kind: "x509", chain } : { kind: "none" };
}

/** Status and JSON body as the port says; Retry-After while assigning or when throttled. */
function send(res: ServerResponse, reply: DeviceReply): void {
  const headers: Record<string, string> = {};
  if ("retryAfter" in reply && reply.retryAfter !== undefined) headers["Retry-After"] = String(reply.retryAfter);
  if (reply.kind === "error") headers["x-ms-error-code"] = String(reply.body.errorCode);
  sendJson(res, reply.status, reply.body, headers);
}

export class DeviceApi {
  constructor(private readonly port: DevicePort) {}

  async handle(req: IncomingMessage, res: ServerResponse, path: RequestPath): Promise<void> {
    const method = req.method ?? "GET";
    const [idScope = "", , registrationId = ""] = path.segments;
    const action = path.lower[3];
    const request = {
      idScope,
      registrationId,
      credentials: credentialsOf(req),
      // Read during allocation, while the device still waits for its answer on this socket.
      sourceAddress: () => req.socket.remoteAddress ?? "",
      protocol: "http" as const,
    };
    if (action === "register" && path.lower.length === 4 && method === "PUT") {
      const body = parseJson(await readBody(req));
      // Over the rate limit this is 429 with Retry-After, as DPS answers on every transport; the C
      // SDK waits and registers again, the Node SDK's HTTP transport gives up (device-api.md §5.2).
      return send(res, await this.port.register({ ...request, body }));
    }
    if (action === "operations" && path.lower.length === 5 && method === "GET") {
      req.resume(); // the SDK sends "{}" on polls; nothing in it matters
      return send(res, await this.port.operationStatus(request, path.segments[4] ?? ""));
    }
    if (action === undefined && method === "POST") {
      req.resume();
      return send(res, await this.port.registrationStatus(request));
    }
    throw new ProvisioError("unknownRoute", { method, path: `/${path.segments.join("/")}` });
  }
}
