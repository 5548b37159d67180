// The real `azure-iot-provisioning-service` client pointed at a local provisio
// (service-api.md §12.2: a per-client agent with our port and CA).
import { Agent } from "node:https";
import { ProvisioningServiceClient } from "azure-iot-provisioning-service";
import type { ProvisioProcess } from "./provisio-process.js";

export function serviceClient(p: ProvisioProcess, connectionString = p.info.serviceConnectionString) {
  const agent = new Agent({ keepAlive: false, ca: p.ca });
  // The SDK cannot put a port in the connection string; requests without one use this.
  (agent as Agent & { defaultPort: number }).defaultPort = p.info.ports.https;
  const client = ProvisioningServiceClient.fromConnectionString(connectionString);
  // _restApiClient is private but stable across 1.x; setOptions passes agent and ca to https.request.
  (client as unknown as { _restApiClient: { setOptions(o: unknown): void } })._restApiClient.setOptions({
    http: { agent },
    ca: p.ca.toString(),
  });
  return client;
}
