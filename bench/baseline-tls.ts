// What both bare baselines listen with: provisio's own key and certificate from its data dir,
// provisio's listener TLS settings, and client certificates asked for but never refused.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { TlsOptions } from "node:tls";
import { listenerTls } from "../src/security/listener-tls.js";

export function baselineTls(dataDir: string): TlsOptions {
  return {
    ...listenerTls({
      keyPem: readFileSync(join(dataDir, "tls", "server.key"), "utf8"),
      certPem: readFileSync(join(dataDir, "tls", "server.pem"), "utf8"),
    }),
    requestCert: true,
    rejectUnauthorized: false,
  };
}
