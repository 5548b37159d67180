// The HTTPS listener: one TLS port for every HTTP surface (design.md, "Running it"). Its handler
// finds the instance by Host, routes on the first path segment and turns errors into DPS bodies.

import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { BuiltinHubs } from "../builtin-hub/builtin-hubs.js";
import { allowCrossOrigin } from "../builtin-hub/hub-cors.js";
import type { HubRestApi } from "../builtin-hub/hub-rest-api.js";
import { sendHubError } from "../builtin-hub/hub-wire.js";
import type { ConsoleSite } from "../console/console-site.js";
import { isConsoleRequest } from "../console/console-site.js";
import { ProvisioError } from "../domain/errors.js";
import type { ServiceRequest } from "../http/api-request.js";
import { hostOf, parseRequestPath, type RequestPath } from "../http/request-path.js";
import { sendError } from "../http/respond.js";
import { MANAGEMENT_SEGMENTS, type ManagementApi } from "../management/management-api.js";
import type { AuditTrail } from "../observability/audit-trail.js";
import type { DiagnosticLog } from "../observability/diagnostic-log.js";
import type { Logger } from "../observability/logger.js";
import type { ProvisioMetrics } from "../observability/metrics.js";
import { spreadRetryAfter } from "../provisioning/backoff.js";
import type { InstanceCache } from "../provisioning/instance-cache.js";
import type { NetworkFilters } from "../provisioning/network-filters.js";
import type { ListenerTls } from "../security/listener-tls.js";
import type { RateLimit } from "../security/rate-limit.js";
import { SERVICE_API_SEGMENTS, type ServiceApi } from "../service-api/service-api.js";
import { serviceOperation } from "../service-api/service-operations.js";
import { type DeviceApi, isDeviceApiPath } from "../transports/http/device-api.js";

export interface HttpsSurfaces {
  instances: InstanceCache;
  serviceApi: ServiceApi;
  managementApi: ManagementApi;
  hubs: BuiltinHubs;
  hubRestApi: HubRestApi;
  deviceApi: DeviceApi;
  /** IP filter rules and public network access of the instances. */
  network: NetworkFilters;
  log: Logger;
  /** DPS's ServiceOperations log lines; none when not given. */
  diagnostics?: DiagnosticLog;
  /** Service API operations per minute per provisioning service (behaviors.md §9); none: unlimited. */
  serviceRate?: RateLimit;
  /** Records changes and key reads with who made them; none when not given. */
  audit?: Pick<AuditTrail, "observe">;
  /** Counts service API requests; none when not given. */
  metrics?: Pick<ProvisioMetrics, "serviceRequest">;
  /** The web console at `/`; none when not given. */
  console?: ConsoleSite;
}

/** The handler of every HTTPS request, testable without a socket (test/support/in-process.ts). */
export type HttpsHandler = (req: IncomingMessage, res: ServerResponse) => void;

export function httpsHandler(surfaces: HttpsSurfaces): HttpsHandler {
  const onInternal = (err: unknown) => surfaces.log.error({ err }, "request failed");
  return (req, res) => {
    // Requests for a built-in hub's host name get IoT Hub's error shape; all others DPS's.
    const hub = surfaces.hubs.byHost(hostOf(req.headers.host));
    if (hub) {
      // The console reads built-in hubs from its own origin (a different host name).
      if (allowCrossOrigin(req, res)) return;
      surfaces.hubRestApi
        .handle(req, res, parseRequestPath(req.url ?? "/"), hub)
        .catch((err) => sendHubError(res, err, onInternal));
      return;
    }
    route(req, res, surfaces).catch((err) => sendError(res, err, onInternal));
  };
}

/**
 * Connection timeouts, as tight as the device SDKs allow (issue "Reliability under faults" 3):
 * they finish a TLS handshake and send a request within a second or two of connecting, and poll
 * an operation again within Retry-After (at most 15 s) on a kept-alive connection.
 */
export const HTTPS_TIMEOUTS = {
  handshakeTimeout: 10_000,
  /** Headers of a request within this of the connection (or of the previous response). */
  headersTimeout: 10_000,
  /** A whole request, body included. */
  requestTimeout: 60_000,
  keepAliveTimeout: 30_000,
  /** How often Node checks the two above (its default, 30 s, let idle sockets live 80 s). */
  connectionsCheckingInterval: 1_000,
} as const;

export function createHttpsListener(tls: ListenerTls, handler: HttpsHandler): Server {
  const { keepAliveTimeout, ...options } = HTTPS_TIMEOUTS;
  const server = createServer({ ...tls, ...options, requestCert: true, rejectUnauthorized: false }, handler);
  server.keepAliveTimeout = keepAliveTimeout;
  return server;
}

/**
 * Once the response is sent: one ServiceOperations line (with the error's code on failure) and the
 * request counted by operation and status.
 */
function observeServiceOperation(
  s: HttpsSurfaces,
  req: IncomingMessage,
  res: ServerResponse,
  path: RequestPath,
  service: string,
): void {
  const startedAt = Date.now();
  res.once("finish", () => {
    const code = res.getHeader("x-ms-error-code");
    const named = serviceOperation(req.method ?? "GET", path);
    s.metrics?.serviceRequest(service, named.operation, res.statusCode);
    s.diagnostics?.write({
      category: "ServiceOperations",
      ...named,
      status: res.statusCode,
      ...(code !== undefined ? { description: `errorCode ${String(code)}` } : {}),
      startedAt,
      callerIp: req.socket.remoteAddress ?? "",
      service,
    });
  });
}

/** The instance a management path is about: the name after `provisioningServices`, if any. */
function managementTarget(path: RequestPath): string | undefined {
  const i = path.lower.indexOf("provisioningservices");
  return i < 0 ? undefined : path.segments[i + 1];
}

async function route(req: IncomingMessage, res: ServerResponse, s: HttpsSurfaces): Promise<void> {
  const path = parseRequestPath(req.url ?? "/");
  const host = hostOf(req.headers.host);
  const first = path.lower[0] ?? "";
  const isService = SERVICE_API_SEGMENTS.has(first);
  if (isService || MANAGEMENT_SEGMENTS.has(first)) {
    const instance = s.instances.byHost(host);
    if (!instance) throw new ProvisioError("unknownHost", { host });
    const r: ServiceRequest = { req, res, path, host, instance };
    if (!isService) {
      s.audit?.observe(r, managementTarget(path) ?? instance.name);
      return s.managementApi.handle(r);
    }
    const address = req.socket.remoteAddress ?? "";
    const verdict = s.network.check(instance, address, "serviceApi");
    if (!verdict.admit) {
      s.log.warn(
        { idScope: instance.idScope, service: instance.name, address, rule: verdict.rule, api: "serviceApi" },
        "refused by the provisioning service's network settings",
      );
      // The client is not told why (behaviors.md §10.2: the message does not name the filter).
      throw new ProvisioError("unauthorized", { detail: "this client may not reach this provisioning service" });
    }
    // Reading the diagnostic lines is not itself a service operation worth a line.
    if ((s.diagnostics || s.metrics) && first !== "diagnostics")
      observeServiceOperation(s, req, res, path, instance.name);
    s.audit?.observe(r, instance.name);
    const wait = s.serviceRate && (await s.serviceRate.take(`ops:${instance.idScope}`));
    if (wait !== undefined) throw new ProvisioError("throttled", {}, spreadRetryAfter(wait));
    return s.serviceApi.handle(r);
  }
  if (isDeviceApiPath(path)) return s.deviceApi.handle(req, res, path);
  if (s.console && isConsoleRequest(req, path) && s.instances.byHost(host)) return s.console.serve(req, res, path);
  throw new ProvisioError("unknownRoute", { method: req.method ?? "GET", path: `/${path.segments.join("/")}` });
}
