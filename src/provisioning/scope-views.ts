// One compiled view of a scope: what every registration of it reads and rarely changes — its
// instance settings, enrollment groups with their keys, X.509 trust (groups by certificate, CA
// store), linked hubs and device location rules — built once per change and handed to attestation
// and allocation. Views are dropped when the store announces a change to their scope
// (store-changes.ts) and re-read after a short time otherwise, so other nodes' changes arrive too.
// What a view keeps for the next devices (parsed intermediates, signature checks, each device's
// last symmetric-key group) lives inside the view, and goes with it.
import { compileLocationRules } from "../allocation/location-rules.js";
import { type SymmetricKeyGroup, symmetricKeyGroups } from "../attestation/symmetric-key.js";
import { X509Trust } from "../attestation/x509-attestation.js";
import type { EnrollmentGroup } from "../domain/enrollment.js";
import { idKey } from "../domain/ids.js";
import type { CaCertificate, Instance, LinkedHub } from "../domain/instance.js";
import type { DevicePathStore, ScopeRecords } from "../store/store.js";
import type { StoreChanges } from "../store/store-changes.js";
import { GroupHints } from "./group-hints.js";

export interface ScopeView {
  readonly instance: Instance;
  readonly groups: readonly EnrollmentGroup[];
  readonly linkedHubs: readonly LinkedHub[];
  readonly caCertificates: readonly CaCertificate[];
  readonly x509: X509Trust;
  /** Source address → location, from the instance's device location rules (geoLatency). */
  readonly locate: (address: string) => string | undefined;
  /** The symmetric-key groups, the device's last one first: it then costs one derivation, not one a group. */
  symmetricKeyGroupsFor(registrationId: string): readonly SymmetricKeyGroup[];
  /** Remember which group admitted the device, for its next registration. */
  rememberGroup(registrationId: string, enrollmentGroupId: string): void;
  /** A linked hub by host name, case-insensitively. */
  linkedHub(name: string): LinkedHub | undefined;
}

/** How long another node's change may go unseen. */
export const SCOPE_VIEW_TTL_MS = 5_000;

export function compileScope(instance: Instance, records: ScopeRecords): ScopeView {
  const symmetric = symmetricKeyGroups(records.groups);
  const hints = new GroupHints();
  const locate = compileLocationRules(instance.deviceLocationRules ?? []);
  const x509 = new X509Trust(records.groups, records.caCertificates);
  return {
    instance,
    groups: records.groups,
    linkedHubs: records.linkedHubs,
    caCertificates: records.caCertificates,
    x509,
    locate,
    symmetricKeyGroupsFor: (registrationId) => hints.order(idKey(registrationId), symmetric),
    rememberGroup: (registrationId, groupId) => hints.remember(idKey(registrationId), groupId),
    linkedHub(name) {
      const lower = name.toLowerCase();
      return records.linkedHubs.find((h) => h.name.toLowerCase() === lower);
    },
  };
}

interface Entry {
  at: number;
  /** The instance's etag the view was compiled for: a changed instance recompiles it. */
  instanceEtag: string;
  view: Promise<ScopeView>;
  /** The records as last read, to tell a re-read that found nothing new (the view, warm, is kept). */
  settled?: { view: ScopeView; json: string };
}

export class ScopeViews {
  readonly #entries = new Map<string, Entry>();

  constructor(
    private readonly store: Pick<DevicePathStore, "readScope">,
    changes: StoreChanges,
    private readonly now: () => number = Date.now,
  ) {
    changes.subscribe((change) => {
      if (change.kind === "resync") this.#entries.clear();
      else this.#entries.delete(change.idScope);
    });
  }

  get(instance: Instance): Promise<ScopeView> {
    const hit = this.#entries.get(instance.idScope);
    if (hit && hit.instanceEtag === instance.etag && this.now() - hit.at < SCOPE_VIEW_TTL_MS) return hit.view;
    const previous = hit?.instanceEtag === instance.etag ? hit.settled : undefined;
    const entry: Entry = {
      at: this.now(),
      instanceEtag: instance.etag,
      view: this.store.readScope(instance.idScope).then((records) => {
        const json = JSON.stringify(records);
        entry.settled = previous?.json === json ? previous : { view: compileScope(instance, records), json };
        return entry.settled.view;
      }),
    };
    this.#entries.set(instance.idScope, entry);
    entry.view.catch(() => {
      if (this.#entries.get(instance.idScope) === entry) this.#entries.delete(instance.idScope);
    });
    return entry.view;
  }
}
