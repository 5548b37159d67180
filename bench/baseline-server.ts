// The baseline: a bare node:https server with provisio's own server key and certificate and the
// same TLS options (baseline-tls.ts), answering every request with a trivial
// `200 {"status":"assigned"}` once the body is read. Same handshakes, same HTTP parsing, no work.
// Usage: node dist/bench/baseline-server.js <dataDir> [trustFile]; prints {"port":N} on stdout, SIGTERM
// stops it. With trustFile (PEM) it is a mutual-TLS server: client chains must verify up to it.
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { baselineTls } from "./baseline-tls.js";

const [dataDir, trustFile] = process.argv.slice(2);
if (!dataDir) {
  process.stderr.write("usage: baseline-server <dataDir> [trustFile]\n");
  process.exit(2);
}

const REPLY = JSON.stringify({ status: "assigned" });
const HEADERS = { "Content-Type": "application/json; charset=utf-8", "Content-Length": Buffer.byteLength(REPLY) };

const server = createServer(baselineTls(dataDir, trustFile), (req, res) => {
  req.on("data", () => undefined);
  req.on("end", () => {
    res.writeHead(200, HEADERS);
    res.end(REPLY);
  });
});
server.keepAliveTimeout = 30_000;

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});

process.on("SIGTERM", () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
