// The whole service in this process (service.ts), on a real SQLite file with its built-in hubs,
// and no listener: HTTPS requests are injected into its handler (light-my-request, as fastify's
// inject()), device registrations go straight to the device port. For engine-level tests that
// need no socket; the real-SDK suites in test/sdk stay the acceptance layer.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inject } from "light-my-request";
import { createSasToken } from "../../src/attestation/sas-token.js";
import { parseConnectionString } from "../../src/domain/connection-string.js";
import { createLogger } from "../../src/observability/logger.js";
import type { DeviceReply } from "../../src/provisioning/device-port.js";
import { loadServeConfig, type ServeConfig } from "../../src/server/config.js";
import { buildService, type ProvisioService, type ServeInfo } from "../../src/service.js";

export interface InProcess {
  service: ProvisioService;
  info: ServeInfo;
  /** An HTTPS request to the service's handler, signed with the owner policy unless `auth` is given. */
  request(
    method: string,
    path: string,
    options?: { body?: unknown; headers?: Record<string, string>; auth?: string | null; host?: string },
  ): Promise<{ status: number; headers: Record<string, unknown>; json(): unknown; text: string }>;
  /** A symmetric-key device's register call through the device port. */
  register(registrationId: string, key: string, payload?: unknown): Promise<DeviceReply>;
  dispose(): Promise<void>;
}

export async function startInProcess(settings: Partial<ServeConfig> = {}): Promise<InProcess> {
  const dataDir = mkdtempSync(join(tmpdir(), "provisio-inproc-"));
  const config = { ...loadServeConfig({}, {}), dataDir, hubs: 2, logLevel: "silent" as const, ...settings };
  const service = await buildService(config, createLogger(config.logLevel));
  const info = await service.info({ https: 0, mqtt: 0, amqp: 0 });
  const owner = parseConnectionString(info.serviceConnectionString);
  if (!owner) throw new Error("no owner connection string");
  return {
    service,
    info,
    async request(method, path, options = {}) {
      const host = options.host ?? info.host;
      const auth =
        options.auth === undefined
          ? createSasToken(owner.key, host, Math.floor(Date.now() / 1000) + 600, owner.keyName)
          : options.auth;
      const r = await inject(service.https, {
        method: method as "GET",
        url: path,
        headers: {
          host,
          ...(auth !== null ? { authorization: auth } : {}),
          ...(options.body !== undefined ? { "content-type": "application/json; charset=utf-8" } : {}),
          ...options.headers,
        },
        ...(options.body !== undefined ? { payload: JSON.stringify(options.body) } : {}),
      });
      return { status: r.statusCode, headers: r.headers, text: r.payload, json: () => JSON.parse(r.payload) };
    },
    register(registrationId, key, payload) {
      const token = createSasToken(
        key,
        `${info.idScope}/registrations/${registrationId}`,
        Math.floor(Date.now() / 1000) + 600,
        "registration",
      );
      return service.engine.register({
        idScope: info.idScope,
        registrationId,
        credentials: { kind: "sas", token },
        sourceAddress: () => "127.0.0.1",
        body: { registrationId, ...(payload !== undefined ? { payload } : {}) },
      });
    },
    async dispose() {
      await service.drain(5_000);
      await service.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
