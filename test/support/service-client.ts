// The real `azure-iot-provisioning-service` client pointed at a local provisio
// (service-api.md §12.2: a per-client agent with our port and CA).

import { Agent } from "node:https";
import type { LookupFunction } from "node:net";
import { ProvisioningServiceClient } from "azure-iot-provisioning-service";
import type { ProvisioProcess } from "./provisio-process.js";

/** A resolver that sends every host name to one address: tests must not depend on DNS. */
export const resolveAllTo =
  (address: string): LookupFunction =>
  (_host, options, callback) => {
    if ((options as { all?: boolean }).all) callback(null, [{ address, family: 4 }]);
    else callback(null, address, 4);
  };

export function serviceClient(
  p: ProvisioProcess,
  connectionString = p.info.serviceConnectionString,
  options: { resolveTo?: string } = {},
) {
  return pointAt(p, ProvisioningServiceClient.fromConnectionString(connectionString), options);
}

/** The client as built for Azure AD: `fromTokenCredential`, sending `Authorization: Bearer …`. */
export function tokenServiceClient(
  p: ProvisioProcess,
  credential: Parameters<typeof ProvisioningServiceClient.fromTokenCredential>[1],
  hostName = p.info.host,
) {
  return pointAt(p, ProvisioningServiceClient.fromTokenCredential(hostName, credential));
}

function pointAt(p: ProvisioProcess, client: ProvisioningServiceClient, options: { resolveTo?: string } = {}) {
  const agent = new Agent({
    keepAlive: false,
    ca: p.ca,
    ...(options.resolveTo ? { lookup: resolveAllTo(options.resolveTo) } : {}),
  });
  // The SDK cannot put a port in the connection string; requests without one use this.
  (agent as Agent & { defaultPort: number }).defaultPort = p.info.ports.https;
  // _restApiClient is private but stable across 1.x; setOptions passes agent and ca to https.request.
  (client as unknown as { _restApiClient: { setOptions(o: unknown): void } })._restApiClient.setOptions({
    http: { agent },
    ca: p.ca.toString(),
  });
  return client;
}

/** The DPS error a refused service SDK call carries (its `responseBody`); throws if it succeeded. */
export async function serviceRefusal(op: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await op;
  } catch (err) {
    const body = JSON.parse((err as { responseBody?: string }).responseBody ?? "{}") as {
      errorCode: number;
      message: string;
    };
    return { code: body.errorCode, message: body.message };
  }
  throw new Error("the call succeeded");
}
