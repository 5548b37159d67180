// The built-in hub's REST API on the HTTPS listener, for requests whose Host is a hub's host
// name (iothub-api.md §4, §5, §7): identity registry, twins, twin query, device HTTP telemetry,
// and Provisio's own telemetry inspection endpoints under /_provisio.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { TLSSocket } from "node:tls";
import { parseSasToken } from "../attestation/sas-token.js";
import { ProvisioError } from "../domain/errors.js";
import { nowUtc } from "../domain/etag.js";
import type { HubRight } from "../domain/hub.js";
import { isObject, MAX_MESSAGE_BYTES, parseJson } from "../domain/json.js";
import { readBody } from "../http/body.js";
import { pageRequest } from "../http/paging.js";
import type { RequestPath } from "../http/request-path.js";
import { sendJson, sendNoContent } from "../http/respond.js";
import { peerLeafCertificate } from "../security/tls-peer.js";
import type { HubRuntime } from "./builtin-hubs.js";
import { moduleKey } from "./device-identity.js";
import { invokeDirectMethod, MAX_METHOD_PAYLOAD_BYTES, parseMethodRequest } from "./direct-methods.js";
import { applyConfigurationContent } from "./edge-modules.js";
import { authenticateDevice, authenticateDeviceRequest, authenticateService } from "./hub-auth.js";
import { identityJson, twinJson } from "./hub-wire.js";
import { moduleJson, modulesOf, moduleTwinJson } from "./modules.js";
import { propertiesFromHeaders } from "./property-bag.js";
import type { TelemetryLog } from "./telemetry-log.js";
import { messageJson } from "./telemetry-log.js";
import type { TelemetryWebhooks } from "./telemetry-webhooks.js";
import { parseTwinQuery, projectTwin } from "./twin-query.js";
import { matchingTwins } from "./twin-scan.js";

/** The leaf certificate of the TLS connection, for devices without a SAS token; only then copied out. */
const deviceLeaf = (req: IncomingMessage): Buffer | undefined =>
  req.headers.authorization ? undefined : peerLeafCertificate(req.socket as TLSSocket);

const header = (req: IncomingMessage, name: string): string | undefined => {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

export class HubRestApi {
  constructor(
    private readonly telemetry: TelemetryLog,
    /** The hubs' telemetry webhooks, for GET /_provisio/routes; none when not given. */
    private readonly webhooks?: Pick<TelemetryWebhooks, "stats">,
  ) {}

  async handle(req: IncomingMessage, res: ServerResponse, path: RequestPath, rt: HubRuntime): Promise<void> {
    const method = req.method ?? "GET";
    const [collection, second, third, fourth] = path.lower;
    const id = path.segments[1] ?? "";
    const auth = (right: HubRight) => authenticateService(req.headers.authorization, rt.hub, right);

    if (collection === "devices") {
      if (second === undefined && method === "GET") {
        auth("RegistryRead");
        const page = await rt.registry.list({ limit: 1000 });
        return sendJson(
          res,
          200,
          page.items.map((d) => identityJson(d.identity)),
        );
      }
      if (second === "query" && third === undefined && method === "POST") return this.query(req, res, rt);
      if (second !== undefined && third === undefined) {
        if (method === "GET") {
          auth("RegistryRead");
          const { identity } = await rt.registry.get(id);
          return sendJson(res, 200, identityJson(identity), { ETag: `"${identity.etag}"` });
        }
        if (method === "PUT") {
          auth("RegistryWrite");
          const body = parseJson(await readBody(req));
          const identity = await rt.registry.createOrUpdate(id, body, header(req, "if-match"));
          return sendJson(res, 200, identityJson(identity), { ETag: `"${identity.etag}"` });
        }
        if (method === "DELETE") {
          auth("RegistryWrite");
          await rt.registry.delete(id, header(req, "if-match"));
          // A device's modules go with it, as on IoT Hub.
          for (const m of await modulesOf(rt, id)) await rt.modules.delete(m.identity.deviceId, undefined);
          return sendNoContent(res);
        }
      }
      if (third === "modules") return this.modules(req, res, rt, path, method);
      if (third === "applyconfigurationcontent" && fourth === undefined && method === "POST") {
        auth("RegistryWrite");
        await applyConfigurationContent(rt, id, parseJson(await readBody(req)));
        return sendNoContent(res);
      }
      if (third === "messages" && fourth === "events" && path.lower.length === 4 && method === "POST") {
        return this.httpTelemetry(req, res, rt, id);
      }
      if (third === "messages" && fourth === "devicebound") {
        return this.cloudToDevice(req, res, rt, id, path, method);
      }
    }
    if (collection === "twins" && second !== undefined && third === "modules" && fourth !== undefined) {
      return this.moduleTwin(req, res, rt, path, method);
    }
    if (collection === "twins" && second !== undefined && third === "methods" && fourth === undefined) {
      if (method !== "POST")
        throw new ProvisioError("hubRouteNotFound", { method, path: `/${path.segments.join("/")}` });
      auth("ServiceConnect");
      return this.directMethod(req, res, rt, id);
    }
    if (collection === "twins" && second !== undefined && third === undefined) {
      if (method === "GET") {
        auth("ServiceConnect");
        return sendJson(res, 200, twinJson(await rt.registry.get(id)));
      }
      if (method === "PATCH" || method === "PUT") {
        auth("ServiceConnect");
        const body = parseJson(await readBody(req));
        const mode = method === "PATCH" ? "patch" : "replace";
        const rec = await rt.registry.updateTwin(id, body, header(req, "if-match"), mode);
        return sendJson(res, 200, twinJson(rec));
      }
    }
    if (collection === "jobs" && second === "v2") {
      return this.jobs(req, res, rt, path, method);
    }
    if (collection === "_provisio" && second === "messages" && method === "GET") {
      auth("ServiceConnect");
      const deviceId = path.query.get("deviceId") ?? undefined;
      return sendJson(res, 200, this.telemetry.recent(rt.hub.name, deviceId).map(messageJson));
    }
    if (collection === "_provisio" && second === "routes" && third === undefined && method === "GET") {
      auth("ServiceConnect");
      return sendJson(res, 200, this.webhooks?.stats(rt.hub.name) ?? []);
    }
    if (collection === "_provisio" && second === "events" && method === "GET") {
      auth("ServiceConnect");
      return this.stream(req, res, rt);
    }
    throw new ProvisioError("hubRouteNotFound", { method, path: `/${path.segments.join("/")}` });
  }

  /**
   * A device's cloud-to-device messages over HTTPS (iothub-api.md §7): GET receives the next one
   * under a lock (its ETag), DELETE …/{lockToken} completes it (`?reject` rejects it), POST
   * …/{lockToken}/abandon gives it back; 204 when nothing waits.
   */
  private async cloudToDevice(
    req: IncomingMessage,
    res: ServerResponse,
    rt: HubRuntime,
    id: string,
    path: RequestPath,
    method: string,
  ): Promise<void> {
    const rec = await rt.registry.get(id);
    authenticateDeviceRequest(req.headers.authorization, deviceLeaf(req), rt.hub, rec.identity);
    const lockToken = path.segments[4];
    const action = path.lower[5];
    if (lockToken === undefined && method === "GET") {
      const d = rt.c2d.receive(id);
      if (!d) return sendNoContent(res);
      const m = d.message;
      const headers: Record<string, string> = {
        ETag: `"${d.lockToken}"`,
        "iothub-messageid": m.messageId,
        "iothub-to": m.to,
        "iothub-ack": m.ack,
        "iothub-expiry": m.expiryTime,
        "iothub-enqueuedtime": m.enqueuedTime,
        "iothub-deliverycount": String(d.deliveryCount),
        "Content-Type": m.contentType ?? "application/octet-stream",
        ...(m.correlationId ? { "iothub-correlationid": m.correlationId } : {}),
        ...(m.contentEncoding ? { "Content-Encoding": m.contentEncoding } : {}),
      };
      for (const [k, v] of Object.entries(m.properties)) headers[`iothub-app-${k}`] = v;
      res.writeHead(200, { ...headers, "Content-Length": m.body.length });
      res.end(m.body);
      return;
    }
    if (lockToken !== undefined) {
      const token = lockToken.replace(/^"|"$/g, "");
      const reject = path.query.has("reject");
      const settled =
        method === "DELETE" && action === undefined
          ? reject
            ? rt.c2d.reject(id, token)
            : rt.c2d.complete(id, token)
          : method === "POST" && action === "abandon" && path.lower.length === 6
            ? rt.c2d.abandon(id, token)
            : undefined;
      if (settled === undefined)
        throw new ProvisioError("hubRouteNotFound", { method, path: `/${path.segments.join("/")}` });
      if (!settled) throw new ProvisioError("hubMessageLockLost", { id, lockToken: token });
      return sendNoContent(res);
    }
    throw new ProvisioError("hubRouteNotFound", { method, path: `/${path.segments.join("/")}` });
  }

  /** /devices/{id}/modules[/{moduleId}]: module identities (IoT Hub's module registry). */
  private async modules(req: IncomingMessage, res: ServerResponse, rt: HubRuntime, path: RequestPath, method: string) {
    const deviceId = path.segments[1] ?? "";
    const moduleId = path.segments[3];
    if (path.segments.length > 4)
      throw new ProvisioError("hubRouteNotFound", { method, path: `/${path.segments.join("/")}` });
    const device = (await rt.registry.get(deviceId)).identity; // 404 DeviceNotFound first, as IoT Hub answers
    // A hub policy with the right, or an IoT Edge device's own token for its modules (its
    // runtime makes and reads the identities of the modules it runs).
    const auth = (right: HubRight) => {
      try {
        authenticateService(req.headers.authorization, rt.hub, right);
      } catch (err) {
        const token = parseSasToken(req.headers.authorization ?? "");
        if (!device.capabilities.iotEdge || !token || token.skn !== undefined) throw err;
        try {
          authenticateDevice(req.headers.authorization, rt.hub, device);
        } catch {
          throw err;
        }
      }
    };
    if (moduleId === undefined && method === "GET") {
      auth("RegistryRead");
      return sendJson(
        res,
        200,
        (await modulesOf(rt, deviceId)).map((m) => moduleJson(m.identity)),
      );
    }
    if (moduleId === undefined)
      throw new ProvisioError("hubRouteNotFound", { method, path: `/${path.segments.join("/")}` });
    const key = moduleKey(deviceId, moduleId);
    if (method === "GET") {
      auth("RegistryRead");
      const { identity } = await rt.modules.get(key);
      return sendJson(res, 200, moduleJson(identity), { ETag: `"${identity.etag}"` });
    }
    if (method === "PUT") {
      auth("RegistryWrite");
      const identity = await rt.modules.createOrUpdate(key, parseJson(await readBody(req)), header(req, "if-match"));
      return sendJson(res, 200, moduleJson(identity), { ETag: `"${identity.etag}"` });
    }
    if (method === "DELETE") {
      auth("RegistryWrite");
      await rt.modules.delete(key, header(req, "if-match"));
      return sendNoContent(res);
    }
    throw new ProvisioError("hubRouteNotFound", { method, path: `/${path.segments.join("/")}` });
  }

  /** /twins/{id}/modules/{moduleId}[/methods]: module twins and direct methods on modules. */
  private async moduleTwin(
    req: IncomingMessage,
    res: ServerResponse,
    rt: HubRuntime,
    path: RequestPath,
    method: string,
  ) {
    const key = moduleKey(path.segments[1] ?? "", path.segments[3] ?? "");
    const action = path.lower[4];
    authenticateService(req.headers.authorization, rt.hub, "ServiceConnect");
    if (action === "methods" && path.lower.length === 5 && method === "POST") {
      const request = parseMethodRequest(parseJson(await readBody(req, MAX_METHOD_PAYLOAD_BYTES + 4096)));
      await rt.modules.get(key);
      return sendJson(res, 200, await invokeDirectMethod(rt.moduleSessions, key, request));
    }
    if (action !== undefined)
      throw new ProvisioError("hubRouteNotFound", { method, path: `/${path.segments.join("/")}` });
    if (method === "GET") return sendJson(res, 200, moduleTwinJson(await rt.modules.get(key)));
    if (method === "PATCH" || method === "PUT") {
      const rec = await rt.modules.updateTwin(
        key,
        parseJson(await readBody(req)),
        header(req, "if-match"),
        method === "PATCH" ? "patch" : "replace",
      );
      return sendJson(res, 200, moduleTwinJson(rec));
    }
    throw new ProvisioError("hubRouteNotFound", { method, path: `/${path.segments.join("/")}` });
  }

  /** /jobs/v2: PUT {id} schedules, GET {id} reads, POST {id}/cancel cancels, GET query lists. */
  private async jobs(req: IncomingMessage, res: ServerResponse, rt: HubRuntime, path: RequestPath, method: string) {
    // Jobs change twins and call methods: ServiceConnect, as /twins and /twins/{id}/methods.
    authenticateService(req.headers.authorization, rt.hub, "ServiceConnect");
    const jobId = path.segments[2];
    const action = path.lower[3];
    if (jobId === undefined)
      throw new ProvisioError("hubRouteNotFound", { method, path: `/${path.segments.join("/")}` });
    if (path.lower[2] === "query" && action === undefined && method === "GET") {
      const type = path.query.get("jobType") ?? undefined;
      const status = path.query.get("jobStatus") ?? undefined;
      return sendJson(res, 200, rt.jobs.list({ ...(type ? { type } : {}), ...(status ? { status } : {}) }));
    }
    if (action === undefined && method === "PUT") {
      return sendJson(res, 200, rt.jobs.create(jobId, parseJson(await readBody(req))));
    }
    if (action === undefined && method === "GET") return sendJson(res, 200, rt.jobs.get(jobId));
    if (action === "cancel" && path.lower.length === 4 && method === "POST")
      return sendJson(res, 200, rt.jobs.cancel(jobId));
    throw new ProvisioError("hubRouteNotFound", { method, path: `/${path.segments.join("/")}` });
  }

  /** POST /twins/{id}/methods: a direct method on the device, answered with its status and payload. */
  private async directMethod(req: IncomingMessage, res: ServerResponse, rt: HubRuntime, id: string): Promise<void> {
    const request = parseMethodRequest(parseJson(await readBody(req, MAX_METHOD_PAYLOAD_BYTES + 4096)));
    // Unknown devices are 404 DeviceNotFound, not "offline".
    await rt.registry.get(id);
    sendJson(res, 200, await invokeDirectMethod(rt.sessions, id, request));
  }

  /** POST /devices/query: the twin query language of twin-query.ts, paged by device id. */
  private async query(req: IncomingMessage, res: ServerResponse, rt: HubRuntime): Promise<void> {
    authenticateService(req.headers.authorization, rt.hub, "ServiceConnect");
    const body = parseJson(await readBody(req));
    if (!isObject(body) || typeof body.query !== "string") {
      throw new ProvisioError("hubArgumentInvalid", { detail: 'Send {"query": "SELECT * FROM devices ..."}.' });
    }
    const query = parseTwinQuery(body.query);
    // FROM devices.modules reads the module registry, each row as a module twin.
    const [source, toTwin] = query.from === "modules" ? [rt.modules, moduleTwinJson] : [rt.registry, undefined];
    const scan = (after?: string) => matchingTwins(source, query, after, toTwin);
    if (query.count !== undefined) {
      let n = 0;
      for await (const _ of scan()) n++;
      return sendJson(res, 200, [{ [query.count]: n }], { "x-ms-item-type": "Json" });
    }
    const page = pageRequest(req.headers);
    const items: Record<string, unknown>[] = [];
    let last: string | undefined;
    let next: string | undefined;
    // One past the page tells whether there is a next; the continuation is the last id returned.
    for await (const { deviceId, twin } of scan(page.after)) {
      if (items.length === page.limit) {
        next = last;
        break;
      }
      items.push(projectTwin(query, twin));
      last = deviceId;
    }
    const headers: Record<string, string> = { "x-ms-item-type": query.select ? "Json" : "Twin" };
    if (next !== undefined) headers["x-ms-continuation"] = Buffer.from(`k:${next}`).toString("base64url");
    sendJson(res, 200, items, headers);
  }

  /** Device-to-cloud over HTTPS: single messages and `application/vnd.microsoft.iothub.json` batches. */
  private async httpTelemetry(req: IncomingMessage, res: ServerResponse, rt: HubRuntime, id: string): Promise<void> {
    const rec = await rt.registry.find(id);
    if (!rec) throw new ProvisioError("hubUnauthorized", { detail: `no device '${id}' is registered` });
    authenticateDeviceRequest(req.headers.authorization, deviceLeaf(req), rt.hub, rec.identity);
    if (rec.identity.status !== "enabled") {
      throw new ProvisioError("hubUnauthorized", { detail: `device '${id}' is disabled` });
    }
    let body: Buffer;
    try {
      body = await readBody(req, MAX_MESSAGE_BYTES);
    } catch (err) {
      if (err instanceof ProvisioError && err.errorName === "bodyTooLarge") {
        throw new ProvisioError("hubMessageTooLarge", { limit: MAX_MESSAGE_BYTES });
      }
      throw err;
    }
    const base = propertiesFromHeaders(req.headers);
    const now = nowUtc();
    if ((header(req, "content-type") ?? "").includes("vnd.microsoft.iothub.json")) {
      const items = parseJson(body);
      if (!Array.isArray(items))
        throw new ProvisioError("hubArgumentInvalid", { detail: "A batch must be a JSON array." });
      for (const item of items) {
        if (!isObject(item) || typeof item.body !== "string") {
          throw new ProvisioError("hubArgumentInvalid", { detail: "Each batch item needs a base64 'body'." });
        }
      }
      for (const item of items as { body: string; properties?: Record<string, string> }[]) {
        const props = propertiesFromHeaders(item.properties ?? {});
        this.telemetry.append({
          hub: rt.hub.name,
          deviceId: id,
          enqueuedTimeUtc: now,
          transport: "https",
          properties: { system: { ...base.system, ...props.system }, app: { ...base.app, ...props.app } },
          body: Buffer.from(item.body, "base64"),
        });
      }
    } else {
      this.telemetry.append({
        hub: rt.hub.name,
        deviceId: id,
        enqueuedTimeUtc: now,
        transport: "https",
        properties: base,
        body,
      });
    }
    sendNoContent(res);
  }

  /** Server-sent events: one `data:` line of JSON per message, until the client goes away. */
  private stream(req: IncomingMessage, res: ServerResponse, rt: HubRuntime): void {
    const deviceId = new URLSearchParams((req.url ?? "").split("?")[1] ?? "").get("deviceId");
    res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache", Connection: "keep-alive" });
    res.write(": watching\n\n");
    const stop = this.telemetry.watch((m) => {
      if (m.hub !== rt.hub.name || (deviceId && m.deviceId !== deviceId)) return;
      res.write(`data: ${JSON.stringify(messageJson(m))}\n\n`);
    });
    const end = () => stop();
    req.on("close", end);
    res.on("close", end);
  }
}
