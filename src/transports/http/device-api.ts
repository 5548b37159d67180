// The HTTPS device API (device-api.md §5, §11.8): register, operation status, registration
// status lookup. Decodes the envelope and calls the registration engine; nothing else.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { TLSSocket } from "node:tls";
import { ProvisioError } from "../../domain/errors.js";
import { parseJson } from "../../domain/json.js";
import { readBody } from "../../http/body.js";
import type { RequestPath } from "../../http/request-path.js";
import { sendJson } from "../../http/respond.js";
import type { DeviceCredentials } from "../../provisioning/find-enrollment.js";
import type { OperationReply, RegistrationEngine } from "../../provisioning/registration-engine.js";
import { peerCertificateChain } from "../../security/tls-peer.js";

/** `/{idScope}/registrations/...`: the device API's paths. */
export const isDeviceApiPath = (path: RequestPath): boolean =>
  path.lower[1] === "registrations" && path.lower.length >= 3;

function credentialsOf(req: IncomingMessage): DeviceCredentials {
  const sasToken = req.headers.authorization;
  // X.509 devices send no Authorization header: only then is the TLS chain worth copying out.
  return sasToken
    ? { sasToken, certificateChain: [] }
    : { certificateChain: peerCertificateChain(req.socket as TLSSocket) };
}

/** 202 + Retry-After while assigning, 200 when final; always JSON with operationId and status. */
function sendOperation(res: ServerResponse, reply: OperationReply): void {
  const { operation } = reply;
  const body = {
    operationId: operation.operationId,
    status: operation.status,
    ...(operation.registrationState ? { registrationState: operation.registrationState } : {}),
  };
  if (reply.final) sendJson(res, 200, body);
  else sendJson(res, 202, body, { "Retry-After": String(reply.retryAfter ?? 1) });
}

export class DeviceApi {
  constructor(private readonly engine: RegistrationEngine) {}

  async handle(req: IncomingMessage, res: ServerResponse, path: RequestPath): Promise<void> {
    const method = req.method ?? "GET";
    const [idScope = "", , registrationId = ""] = path.segments;
    const action = path.lower[3];
    const common = {
      idScope,
      registrationId,
      credentials: credentialsOf(req),
      // Read during allocation, while the device still waits for its answer on this socket.
      sourceAddress: () => req.socket.remoteAddress ?? "",
    };
    if (action === "register" && path.lower.length === 4 && method === "PUT") {
      const body = parseJson(await readBody(req));
      // Over the rate limit this throws 429 with Retry-After, as DPS answers on every transport;
      // the C SDK waits and registers again, the Node SDK's HTTP transport gives up (device-api.md §5.2).
      return sendOperation(res, await this.engine.register({ ...common, body }));
    }
    if (action === "operations" && path.lower.length === 5 && method === "GET") {
      req.resume(); // the SDK sends "{}" on polls; nothing in it matters
      return sendOperation(res, await this.engine.operationStatus(common, path.segments[4] ?? ""));
    }
    if (action === undefined && method === "POST") {
      req.resume();
      return sendJson(res, 200, await this.engine.registrationStatus(common));
    }
    throw new ProvisioError("unknownRoute", { method, path: `/${path.segments.join("/")}` });
  }
}
