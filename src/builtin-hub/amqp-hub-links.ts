// The link addresses of IoT Hub's AMQP endpoint (the device SDKs' `endpoint.*Path`, the service
// SDK's `/messages/*`): which node a link attaches to, seen from the hub. Pure.

/** What a device (or module) link is for. */
export type DeviceChannel = "events" | "devicebound" | "methods" | "twin";

export type HubLinkAddress =
  | { kind: "cbs" }
  /** The service: cloud-to-device messages in, their feedback out. */
  | { kind: "serviceDevicebound" }
  | { kind: "serviceFeedback" }
  /** The Event Hubs-compatible endpoint: its `$management` node and its partitions. */
  | { kind: "management"; entity?: string }
  | { kind: "eventHubPartition"; entity: string; consumerGroup: string; partition: string }
  /** `host`: the hub's host name when the address names it (`amqps://{host}/devices/…`, the C SDK's form). */
  | { kind: "device"; deviceId: string; moduleId?: string; channel: DeviceChannel; host?: string }
  | { kind: "unknown" };

const CHANNELS: Record<string, DeviceChannel> = {
  "messages/events": "events",
  "messages/devicebound": "devicebound",
  "methods/devicebound": "methods",
  twin: "twin",
};

/**
 * `/devices/{d}[/modules/{m}]/{messages/events|messages/devicebound|methods/devicebound|twin}`,
 * `$cbs`, `/messages/devicebound`, `/messages/serviceBound/feedback`. A device's address may
 * start with `amqps://{host}` (the C SDK writes them so); the node names are matched without
 * regard to case (`methods/deviceBound` occurs). Ids arrive URL-encoded from some clients, as in
 * paths; a trailing query (`?api-version=`) is ignored.
 */
export function parseHubLinkAddress(address: string | undefined): HubLinkAddress {
  if (!address) return { kind: "unknown" };
  const withHost = /^amqps?:\/\/([^/]+)(\/.*)$/i.exec(address.replace(/\?.*$/, ""));
  const host = withHost?.[1]?.toLowerCase();
  const path = withHost?.[2] ?? address.replace(/\?.*$/, "");
  if (path === "$cbs") return { kind: "cbs" };
  if (path === "/messages/devicebound") return { kind: "serviceDevicebound" };
  if (path === "/messages/serviceBound/feedback") return { kind: "serviceFeedback" };
  if (path === "$management") return { kind: "management" };
  const management = /^([^/$][^/]*)\/\$management$/.exec(path);
  if (management?.[1]) return { kind: "management", entity: management[1] };
  const partition = /^([^/$][^/]*)\/ConsumerGroups\/([^/]+)\/Partitions\/([^/]+)$/i.exec(path);
  if (partition?.[1] && partition[2] && partition[3]) {
    return { kind: "eventHubPartition", entity: partition[1], consumerGroup: partition[2], partition: partition[3] };
  }
  const m =
    /^\/devices\/([^/]+)(?:\/modules\/([^/]+))?\/(messages\/events|messages\/devicebound|methods\/devicebound|twin)$/i.exec(
      path,
    );
  const channel = m?.[3] ? CHANNELS[m[3].toLowerCase()] : undefined;
  if (!m?.[1] || !channel) return { kind: "unknown" };
  const decode = (s: string): string | undefined => {
    try {
      return decodeURIComponent(s);
    } catch {
      return undefined;
    }
  };
  const deviceId = decode(m[1]);
  const moduleId = m[2] === undefined ? undefined : decode(m[2]);
  if (deviceId === undefined || (m[2] !== undefined && moduleId === undefined)) return { kind: "unknown" };
  return {
    kind: "device",
    deviceId,
    ...(moduleId !== undefined ? { moduleId } : {}),
    channel,
    ...(host !== undefined ? { host } : {}),
  };
}

/** Does a link to this address belong to the hub rather than to DPS (a device dialing a gateway name)? */
export const isHubLinkAddress = (address: string | undefined): boolean =>
  parseHubLinkAddress(address).kind !== "unknown";
