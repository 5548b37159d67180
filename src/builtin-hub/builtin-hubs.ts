// The built-in hubs of this server: created on first start, each with its own host name and
// policies, all sharing the listeners and routed by the host name a client presents.
import { randomBytes } from "node:crypto";
import { isIP } from "node:net";
import { formatConnectionString } from "../domain/connection-string.js";
import { type BuiltinHub, HUB_RIGHTS, type HubPolicy } from "../domain/hub.js";
import type { HubDeviceEvent, HubEventRelay, HubStore } from "../store/hub-store.js";
import { FeedbackChannel } from "./c2d-feedback.js";
import { C2dQueues } from "./c2d-queue.js";
import { DeviceSessions } from "./device-sessions.js";
import { ensureEdgeSystemModules } from "./edge-modules.js";
import { EventHubPartitions } from "./event-hub-partitions.js";
import { HubJobs } from "./hub-jobs.js";
import { HubRegistry, type RegistryEvents } from "./registry.js";

export interface HubRuntime {
  hub: BuiltinHub;
  registry: HubRegistry;
  sessions: DeviceSessions;
  /** Scheduled twin updates and direct methods over many devices (this node's, in memory). */
  jobs: HubJobs;
  /** Module identities and twins, keyed `{deviceId}/{moduleId}`. */
  modules: HubRegistry;
  /** The live MQTT sessions of modules (by the same key). */
  moduleSessions: DeviceSessions;
  /** Cloud-to-device messages waiting for their devices (this node's, in memory). */
  c2d: C2dQueues;
  /** Their delivery feedback, for back ends that asked. */
  feedback: FeedbackChannel;
  /** Telemetry as the Event Hubs-compatible endpoint serves it (this node's, in memory). */
  eventHub: EventHubPartitions;
}

export const OWNER = "iothubowner";

const key = (): string => randomBytes(32).toString("base64");

/** The policies IoT Hub creates with a hub (iothub-api.md §3.1). */
function defaultPolicies(): HubPolicy[] {
  const policy = (keyName: string, rights: HubPolicy["rights"]): HubPolicy => ({
    keyName,
    primaryKey: key(),
    secondaryKey: key(),
    rights,
  });
  return [
    policy(OWNER, [...HUB_RIGHTS]),
    policy("service", ["ServiceConnect"]),
    policy("device", ["DeviceConnect"]),
    policy("registryRead", ["RegistryRead"]),
    policy("registryReadWrite", ["RegistryRead", "RegistryWrite"]),
  ];
}

/** `hub-N.{host}`; an IP address host has no subdomains, so those hubs live under localhost. */
export const hubHostName = (n: number, host: string): string => `hub-${n}.${isIP(host) ? "localhost" : host}`;

export function ownerConnectionString(hub: BuiltinHub): string {
  const owner = hub.policies.find((p) => p.keyName === OWNER) ?? hub.policies[0];
  return formatConnectionString({
    hostName: hub.hostName,
    keyName: owner?.keyName ?? OWNER,
    key: owner?.primaryKey ?? "",
  });
}

/**
 * The hub's Event Hubs-compatible connection string, as the portal shows IoT Hub's: the hub's own
 * host name as the namespace, its name as the entity, the owner policy's key.
 */
export function eventHubConnectionString(hub: BuiltinHub): string {
  const owner = hub.policies.find((p) => p.keyName === OWNER) ?? hub.policies[0];
  return `Endpoint=sb://${hub.hostName}/;SharedAccessKeyName=${owner?.keyName ?? OWNER};SharedAccessKey=${owner?.primaryKey ?? ""};EntityPath=${hub.name}`;
}

export class BuiltinHubs {
  #byHost = new Map<string, HubRuntime>();

  /** `relay`: when several nodes share the store, events reach sessions on every node. */
  constructor(
    private readonly store: HubStore,
    private readonly relay?: HubEventRelay,
  ) {
    relay?.subscribe((e) => {
      const rt = this.byName(e.hub);
      if (!rt) return;
      if (e.kind === "desired") rt.sessions.desiredChanged(e.deviceId, e.notification, e.version);
      else rt.sessions.deviceRevoked(e.deviceId);
    });
  }

  /** The events a hub's registry raises: its sessions here, and the other nodes' through the relay. */
  #events(name: string, sessions: DeviceSessions): RegistryEvents {
    const relay = this.relay;
    if (!relay) return sessions;
    const relayed = (e: HubDeviceEvent) => void relay.publish(e).catch(() => undefined);
    return {
      desiredChanged: (deviceId, notification, version) => {
        sessions.desiredChanged(deviceId, notification, version);
        relayed({ hub: name, deviceId, kind: "desired", notification, version });
      },
      deviceRevoked: (deviceId) => {
        sessions.deviceRevoked(deviceId);
        relayed({ hub: name, deviceId, kind: "revoked" });
      },
    };
  }

  byName(name: string): HubRuntime | undefined {
    for (const rt of this.#byHost.values()) if (rt.hub.name === name) return rt;
    return undefined;
  }

  /** Make sure hubs 1..count exist with host names under `host`; start their runtimes. */
  async load(count: number, host: string): Promise<void> {
    const stored = new Map((await this.store.listBuiltinHubs()).map((h) => [h.name, h]));
    for (let n = 1; n <= count; n++) {
      const name = `hub-${n}`;
      const hostName = hubHostName(n, host);
      let hub = stored.get(name);
      if (!hub || hub.hostName !== hostName) {
        hub = { name, hostName, policies: hub?.policies ?? defaultPolicies() };
        await this.store.putBuiltinHub(hub);
      }
      const sessions = new DeviceSessions();
      const registry = new HubRegistry(name, this.store, this.#events(name, sessions));
      const feedback = new FeedbackChannel();
      const c2d = new C2dQueues((record) => feedback.add(record));
      // Modules' desired-property pushes reach their sessions on this node.
      const moduleSessions = new DeviceSessions();
      const modules = new HubRegistry(`${name}/modules`, this.store, moduleSessions, "module");
      // An IoT Edge device gets $edgeAgent and $edgeHub, as on IoT Hub.
      registry.afterWrite((identity) => ensureEdgeSystemModules(modules, identity));
      const rt: Omit<HubRuntime, "jobs"> & Partial<Pick<HubRuntime, "jobs">> = {
        hub,
        registry,
        sessions,
        modules,
        moduleSessions,
        c2d,
        feedback,
        eventHub: new EventHubPartitions(),
      };
      rt.jobs = new HubJobs(rt as HubRuntime);
      this.#byHost.set(hostName.toLowerCase(), rt as HubRuntime);
    }
  }

  /** The hub answering for a host name (a `:port` suffix is ignored). */
  byHost(host: string): HubRuntime | undefined {
    return this.#byHost.get(host.replace(/:\d+$/, "").toLowerCase());
  }

  all(): HubRuntime[] {
    return [...this.#byHost.values()];
  }

  /** Close every device session (shutdown). */
  closeSessions(): void {
    for (const rt of this.#byHost.values()) rt.sessions.closeAll("server shutting down");
  }
}
