// Step 5 of a registration: make the hub hold the device (iothub-api.md §8, behaviors.md §5-6).
// First assignment: identity + initial twin. Re-registration follows the reprovision policy:
// same hub → refresh the identity; new hub → migrate the twin (or reset it), then remove the
// device from the old hub. A failure undoes what this attempt created.
import type { InitialTwin, ReprovisionPolicy } from "../domain/enrollment.js";
import { ProvisioError } from "../domain/errors.js";
import type { LinkedHub } from "../domain/instance.js";
import type { RegistrationSubstatus } from "../domain/registration-state.js";
import { type HubDevice, HubError, type TwinPatch } from "../hub-client/hub-client.js";
import type { HubClientPool } from "./hub-client-pool.js";

export interface ApplyInput {
  target: LinkedHub;
  /** Where the device is now, if it was assigned before; `hub` is undefined once unlinked. */
  previous?: { hubName: string; hub: LinkedHub | undefined; deviceId: string };
  deviceId: string;
  keys?: { primaryKey: string; secondaryKey: string };
  /** X.509 devices: the leaf thumbprint, primary and secondary (behaviors.md §2.2). */
  thumbprint?: string;
  iotEdge: boolean;
  initialTwin?: InitialTwin;
  policy: ReprovisionPolicy;
}

export interface ApplyResult {
  hub: LinkedHub;
  substatus: RegistrationSubstatus;
}

const twinPatchOf = (twin: InitialTwin | undefined): TwinPatch | undefined =>
  twin && (twin.tags || twin.properties?.desired)
    ? { tags: twin.tags ?? {}, properties: { desired: twin.properties?.desired ?? {} } }
    : undefined;

/** Tags and desired properties of a twin read from a hub, without hub-owned `$` fields. */
function portableTwin(twin: Record<string, unknown>): TwinPatch {
  const strip = (o: unknown): Record<string, unknown> =>
    Object.fromEntries(Object.entries((o as Record<string, unknown>) ?? {}).filter(([k]) => !k.startsWith("$")));
  const props = (twin.properties ?? {}) as Record<string, unknown>;
  return { tags: strip(twin.tags), properties: { desired: strip(props.desired) } };
}

function failed(hub: string, err: unknown): ProvisioError {
  const detail =
    err instanceof HubError ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err);
  return new ProvisioError("hubApplyFailed", { hub, detail });
}

/** What a registration will do to the hubs (behaviors.md §6.2); pure, so dry runs show it too. */
export interface ReprovisionPlan {
  target: LinkedHub;
  sameHub: boolean;
  /** The twin the identity gets: the initial twin, the old hub's (migrate), or left as it is. */
  twin: "initial" | "migrate" | "keep";
  substatus: RegistrationSubstatus;
}

export function planReprovision(input: Pick<ApplyInput, "target" | "previous" | "policy">): ReprovisionPlan {
  const { previous, policy } = input;
  // "Never re-provision" keeps an assigned device where it is, while that hub is still linked.
  const target = previous && !policy.updateHubAssignment && previous.hub ? previous.hub : input.target;
  const sameHub = previous !== undefined && previous.hubName.toLowerCase() === target.name.toLowerCase();
  if (!previous) return { target, sameHub, twin: "initial", substatus: "initialAssignment" };
  if (sameHub) return { target, sameHub, twin: "keep", substatus: "reprovisionedToInitialAssignment" };
  if (policy.migrateDeviceData && previous.hub)
    return { target, sameHub, twin: "migrate", substatus: "deviceDataMigrated" };
  return { target, sameHub, twin: "initial", substatus: "deviceDataReset" };
}

export async function applyToHub(hubClients: HubClientPool, input: ApplyInput): Promise<ApplyResult> {
  const { previous } = input;
  const plan = planReprovision(input);
  const { target, sameHub } = plan;
  const device: HubDevice = {
    deviceId: input.deviceId,
    status: "enabled",
    authentication: input.thumbprint
      ? {
          type: "selfSigned",
          x509Thumbprint: { primaryThumbprint: input.thumbprint, secondaryThumbprint: input.thumbprint },
        }
      : input.keys
        ? { type: "sas", symmetricKey: { primaryKey: input.keys.primaryKey, secondaryKey: input.keys.secondaryKey } }
        : { type: "sas" },
    capabilities: { iotEdge: input.iotEdge },
  };
  const client = hubClients.clientFor(target);

  let twin = plan.twin === "initial" ? twinPatchOf(input.initialTwin) : undefined;
  let substatus = plan.substatus;
  if (plan.twin === "migrate" && previous?.hub) {
    try {
      twin = portableTwin(await hubClients.clientFor(previous.hub).getTwin(previous.deviceId));
    } catch {
      // The old hub is gone or refuses: start from the initial twin.
      twin = twinPatchOf(input.initialTwin);
      substatus = "deviceDataReset";
    }
  }

  let created = false;
  try {
    ({ created } = await client.createOrUpdateDevice(device));
    if (twin) await client.replaceTwin(input.deviceId, twin, "*");
  } catch (err) {
    // Nothing half-applied: an identity this attempt created goes again.
    if (created) await client.deleteDevice(input.deviceId).catch(() => false);
    throw failed(target.name, err);
  }
  if (previous?.hub && !sameHub) {
    // The device lives on the new hub now; the old identity must not keep working.
    await hubClients
      .clientFor(previous.hub)
      .deleteDevice(previous.deviceId)
      .catch(() => false);
  }
  return { hub: target, substatus };
}
