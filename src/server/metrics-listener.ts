// The Prometheus scrape endpoint: plain HTTP, GET /metrics, on its own port (loopback by default).
import http from "node:http";
import type { Registry } from "prom-client";

export function createMetricsListener(registry: Registry): http.Server {
  return http.createServer((req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (req.method !== "GET" || path !== "/metrics") {
      res.writeHead(404, { "Content-Type": "text/plain" }).end("Metrics are at GET /metrics.\n");
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { "Content-Type": registry.contentType }).end(text),
      (err: unknown) => res.writeHead(500, { "Content-Type": "text/plain" }).end(`${String(err)}\n`),
    );
  });
}
