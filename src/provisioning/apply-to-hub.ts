// The hub steps of a registration (iothub-api.md §8, behaviors.md §5-6): what the hubs will see
// (planReprovision, pure, so dry runs show it too) and making it so (applyToHub). First
// assignment: identity + initial twin. Re-registration follows the reprovision policy: same hub →
// refresh the identity; new hub → migrate the twin (or reset it); the old hub loses the device
// only once the record says it lives on the new one (removeFromOldHub, after the commit), so a
// crash in between never leaves a record pointing at a deleted identity. A failure undoes what
// this attempt created; what cannot be undone is left to the hub intent's settling (hub-intents.ts).
import type { HubCredential } from "../attestation/attestation-outcome.js";
import type { InitialTwin, ReprovisionPolicy } from "../domain/enrollment.js";
import { ProvisioError } from "../domain/errors.js";
import type { LinkedHub } from "../domain/instance.js";
import type { RegistrationSubstatus } from "../domain/registration-state.js";
import { type HubDevice, HubError, type TwinPatch } from "../hub-client/hub-client.js";
import type { HubClientPool } from "./hub-client-pool.js";

/** Where the device is now, if it was placed before; `hub` is undefined once unlinked. */
export interface PreviousPlacement {
  hubName: string;
  hub: LinkedHub | undefined;
  deviceId: string;
}

/** What a registration will do to the hubs (behaviors.md §6.2). */
export interface ReprovisionPlan {
  target: LinkedHub;
  previous: PreviousPlacement | undefined;
  sameHub: boolean;
  /** The twin the identity gets: the initial twin, the old hub's (migrate), or left as it is. */
  twin: "initial" | "migrate" | "keep";
  substatus: RegistrationSubstatus;
}

export function planReprovision(input: {
  target: LinkedHub;
  previous: PreviousPlacement | undefined;
  policy: ReprovisionPolicy;
}): ReprovisionPlan {
  const { previous, policy } = input;
  // "Never re-provision" keeps an assigned device where it is, while that hub is still linked.
  const target = previous && !policy.updateHubAssignment && previous.hub ? previous.hub : input.target;
  const sameHub = previous !== undefined && previous.hubName.toLowerCase() === target.name.toLowerCase();
  const plan = { target, previous, sameHub };
  if (!previous) return { ...plan, twin: "initial", substatus: "initialAssignment" };
  if (sameHub) return { ...plan, twin: "keep", substatus: "reprovisionedToInitialAssignment" };
  if (policy.migrateDeviceData && previous.hub) return { ...plan, twin: "migrate", substatus: "deviceDataMigrated" };
  return { ...plan, twin: "initial", substatus: "deviceDataReset" };
}

export interface ApplyInput {
  plan: ReprovisionPlan;
  deviceId: string;
  credential: HubCredential;
  iotEdge: boolean;
  /** Used when the plan says "initial" (and when migration cannot read the old hub). */
  initialTwin: InitialTwin | undefined;
}

export interface ApplyResult {
  hub: LinkedHub;
  substatus: RegistrationSubstatus;
  /** The identity to remove from the old hub once the record is committed (a migration). */
  leaving?: { hub: LinkedHub; deviceId: string };
}

/** Reports what the hub steps could not do cleanly: the log hears every one. */
export type HubWarning = (message: string, fields: Record<string, unknown>) => void;

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

const reasonOf = (err: unknown): string =>
  err instanceof HubError ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err);

/** The identity DPS writes for a device attested with `credential` (iothub-api.md §8.1). */
function hubDevice(deviceId: string, credential: HubCredential, iotEdge: boolean): HubDevice {
  return {
    deviceId,
    status: "enabled",
    authentication:
      credential.kind === "x509"
        ? {
            type: "selfSigned",
            // One certificate: the primary thumbprint is also the secondary (behaviors.md §2.2).
            x509Thumbprint: {
              primaryThumbprint: credential.sha1Thumbprint,
              secondaryThumbprint: credential.sha1Thumbprint,
            },
          }
        : { type: "sas", symmetricKey: { primaryKey: credential.primaryKey, secondaryKey: credential.secondaryKey } },
    capabilities: { iotEdge },
  };
}

export async function applyToHub(hubs: HubClientPool, input: ApplyInput, warn: HubWarning): Promise<ApplyResult> {
  const { plan } = input;
  const { target, previous } = plan;
  const client = hubs.clientFor(target);

  let twin = plan.twin === "initial" ? twinPatchOf(input.initialTwin) : undefined;
  let substatus = plan.substatus;
  if (plan.twin === "migrate" && previous?.hub) {
    try {
      twin = portableTwin(await hubs.clientFor(previous.hub).getTwin(previous.deviceId));
    } catch (err) {
      // The old hub is gone or refuses: start from the initial twin, and say so.
      warn("could not read the twin on the old hub to migrate it; the device gets its initial twin", {
        hub: previous.hubName,
        deviceId: previous.deviceId,
        reason: reasonOf(err),
      });
      twin = twinPatchOf(input.initialTwin);
      substatus = "deviceDataReset";
    }
  }

  let created = false;
  try {
    ({ created } = await client.createOrUpdateDevice(hubDevice(input.deviceId, input.credential, input.iotEdge)));
    if (twin) await client.replaceTwin(input.deviceId, twin, "*");
  } catch (err) {
    let detail = reasonOf(err);
    // Nothing half-applied: an identity this attempt created goes again.
    if (created) {
      await client.deleteDevice(input.deviceId).catch((undo: unknown) => {
        warn("could not remove the identity a failed registration created", {
          hub: target.name,
          deviceId: input.deviceId,
          reason: reasonOf(undo),
        });
        detail += `; the identity it created could not be removed (${reasonOf(undo)})`;
      });
    }
    throw new ProvisioError("hubApplyFailed", { hub: target.name, detail });
  }
  if (previous?.hub && !plan.sameHub)
    return { hub: target, substatus, leaving: { hub: previous.hub, deviceId: previous.deviceId } };
  return { hub: target, substatus };
}

/**
 * After the commit: the old identity must not keep working. Resolves to false when the old hub
 * refused (the hub intent stays, and its settling tries again).
 */
export async function removeFromOldHub(
  hubs: HubClientPool,
  leaving: { hub: LinkedHub; deviceId: string },
  warn: HubWarning,
): Promise<boolean> {
  try {
    await hubs.clientFor(leaving.hub).deleteDevice(leaving.deviceId);
    return true;
  } catch (err) {
    warn("could not remove the device from its old hub yet; it is retried", {
      hub: leaving.hub.name,
      deviceId: leaving.deviceId,
      reason: reasonOf(err),
    });
    return false;
  }
}
