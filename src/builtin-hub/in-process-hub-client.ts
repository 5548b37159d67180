// A HubClient for a built-in hub of this same server: the same operations and the same answers
// as the IoT Hub REST API (hub-client/hub-client.ts), without a TLS round trip to ourselves. The
// connection string is still checked like a SAS-signed request would be, so a stale key fails
// with IotHubUnauthorizedAccess exactly as over REST. The registration hot path uses it for
// built-in hubs (PROVISIO_BUILTIN_HUB_CLIENT=rest switches back to REST).
import { timingSafeEqual } from "node:crypto";
import { parseConnectionString } from "../domain/connection-string.js";
import { ProvisioError } from "../domain/errors.js";
import type { BuiltinHub, DeviceIdentity } from "../domain/hub.js";
import type { HubClient, HubDevice, TwinPatch } from "../hub-client/hub-client.js";
import { HubError } from "../hub-client/hub-errors.js";
import { identityJson, twinJson } from "./hub-wire.js";
import type { HubRegistry } from "./registry.js";

const sameKey = (a: string, b: string): boolean => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

export class InProcessHubClient implements HubClient {
  readonly hostName: string;
  readonly #authorized: HubError | undefined;

  constructor(
    connectionString: string,
    hub: BuiltinHub,
    private readonly registry: HubRegistry,
  ) {
    this.hostName = hub.hostName;
    const cs = parseConnectionString(connectionString);
    const policy = cs && hub.policies.find((p) => p.keyName.toLowerCase() === cs.keyName.toLowerCase());
    const keyOk = !!cs && !!policy && (sameKey(cs.key, policy.primaryKey) || sameKey(cs.key, policy.secondaryKey));
    const rightsOk = !!policy && policy.rights.includes("RegistryWrite") && policy.rights.includes("ServiceConnect");
    this.#authorized =
      keyOk && rightsOk
        ? undefined
        : new HubError(
            401,
            "IotHubUnauthorizedAccess",
            `IoT hub '${hub.hostName}' refused the linked connection string: ${keyOk ? "its policy needs RegistryWrite and ServiceConnect" : "the key does not match a policy of the hub"}.`,
            hub.hostName,
          );
  }

  /** Every call: authorized as over REST, and catalogue errors turned into HubErrors. */
  private async call<T>(what: string, work: () => Promise<T>): Promise<T> {
    if (this.#authorized) throw this.#authorized;
    try {
      return await work();
    } catch (err) {
      if (!(err instanceof ProvisioError)) throw err;
      throw new HubError(
        err.status,
        err.hubCode ?? "ServerError",
        `${what} on '${this.hostName}': ${err.message}`,
        this.hostName,
      );
    }
  }

  private putDevice(device: HubDevice, ifMatch?: string): Promise<DeviceIdentity> {
    const { etag: _etag, generationId: _generationId, ...body } = device;
    return this.call("PUT device", async () =>
      identityJson(await this.registry.createOrUpdate(device.deviceId, body, ifMatch)),
    );
  }

  async createOrUpdateDevice(device: HubDevice): Promise<{ identity: DeviceIdentity; created: boolean }> {
    try {
      return { identity: await this.putDevice(device), created: true };
    } catch (err) {
      if (!(err instanceof HubError) || err.code !== "DeviceAlreadyExists") throw err;
      return { identity: await this.putDevice(device, "*"), created: false };
    }
  }

  deleteDevice(deviceId: string, ifMatch?: string): Promise<boolean> {
    return this.call("DELETE device", async () => {
      if (!(await this.registry.find(deviceId))) return false;
      await this.registry.delete(deviceId, ifMatch ?? "*");
      return true;
    });
  }

  getTwin(deviceId: string): Promise<Record<string, unknown>> {
    return this.call("GET twin", async () => twinJson(await this.registry.get(deviceId)));
  }

  replaceTwin(deviceId: string, twin: TwinPatch, ifMatch?: string): Promise<Record<string, unknown>> {
    return this.call("PUT twin", async () =>
      twinJson(await this.registry.updateTwin(deviceId, twin, ifMatch ?? "*", "replace")),
    );
  }

  close(): void {}
}
