// What both bare baselines listen with: provisio's own key and certificate from its data dir and
// provisio's listener TLS settings. Client certificates are asked for; with `trustFile` (the x509
// scenario) the client's chain must verify up to a certificate in that PEM file, as in any bare
// mutual-TLS server, and without it they are never refused.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { TlsOptions } from "node:tls";
import { listenerTls } from "../src/security/listener-tls.js";

export function baselineTls(dataDir: string, trustFile?: string): TlsOptions {
  return {
    ...listenerTls({
      keyPem: readFileSync(join(dataDir, "tls", "server.key"), "utf8"),
      certPem: readFileSync(join(dataDir, "tls", "server.pem"), "utf8"),
      rsa: existsSync(join(dataDir, "tls", "server-rsa.pem"))
        ? {
            keyPem: readFileSync(join(dataDir, "tls", "server-rsa.key"), "utf8"),
            certPem: readFileSync(join(dataDir, "tls", "server-rsa.pem"), "utf8"),
          }
        : undefined,
    }),
    requestCert: true,
    ...(trustFile ? { ca: readFileSync(trustFile, "utf8"), rejectUnauthorized: true } : { rejectUnauthorized: false }),
  };
}
