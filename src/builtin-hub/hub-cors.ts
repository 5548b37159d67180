// Cross-origin calls to a built-in hub's REST API, for the web console, which is served on the
// provisioning service's host name. Every call still needs the hub's own SAS token in the
// Authorization header (never a cookie), so any origin may make it: CORS only lets it read the reply.
import type { IncomingMessage, ServerResponse } from "node:http";

/** Adds CORS headers to a cross-origin request; answers a preflight itself (then true). */
export function allowCrossOrigin(req: IncomingMessage, res: ServerResponse): boolean {
  const origin = req.headers.origin;
  if (!origin) return false;
  res.setHeader("Access-Control-Allow-Origin", origin);
  res.setHeader("Vary", "Origin");
  res.setHeader("Access-Control-Expose-Headers", "ETag, x-ms-continuation, x-ms-error-code, x-ms-item-type");
  if (req.method !== "OPTIONS" || !req.headers["access-control-request-method"]) return false;
  res.writeHead(204, {
    "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match, x-ms-max-item-count, x-ms-continuation",
    "Access-Control-Max-Age": "600",
  });
  res.end();
  return true;
}
