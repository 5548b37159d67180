// Static configuration (`static`), behaviors.md §4.4: the enrollment names exactly one hub. The deprecated
// `iotHubHostName` field wins over `iotHubs` when both are present (§4.1).

export type StaticSelection = { ok: true; hub: string } | { ok: false; reason: string };

/** The single hub an enrollment selects, as written on the enrollment (not yet checked against linked hubs). */
export function staticHub(enrollment: {
  iotHubHostName?: string | undefined;
  iotHubs?: readonly string[] | undefined;
}): StaticSelection {
  const legacy = enrollment.iotHubHostName;
  if (legacy !== undefined && legacy !== "") return { ok: true, hub: legacy };
  const hubs = enrollment.iotHubs ?? [];
  if (hubs.length === 1) return { ok: true, hub: hubs[0] as string };
  if (hubs.length === 0) {
    return {
      ok: false,
      reason:
        "static allocation needs exactly one IoT hub on the enrollment, but it lists none: set iotHubs to one hub",
    };
  }
  return {
    ok: false,
    reason: `static allocation needs exactly one IoT hub on the enrollment, but it lists ${hubs.length}: keep one hub in iotHubs or choose another allocation policy`,
  };
}
