// The bench's simulated devices (the generators themselves are src/load/, shared with
// `provisio device simulate`): registration ids `bench-{kind}-{run}-{i}`, keys derived from the
// bench group's key and SAS tokens made ahead of timing.
import { createSasToken } from "../src/attestation/sas-token.js";
import { deriveDeviceKey } from "../src/attestation/symmetric-key.js";
import type { DeviceIdentity } from "../src/load/load-run.js";

export type { LoadResult } from "../src/load/load-run.js";

/** What a prepared worker needs to build its devices: the ids and how to sign for them. */
export interface DeviceSpec {
  idScope: string;
  groupKey: string;
  /** Registration ids are `bench-{kind}-{run}-{i}` for i in `indices`. */
  run: string;
  indices: number[];
}

/** The bench always dials its own servers on loopback, naming them `localhost`. */
export const BENCH_HOST = { host: "127.0.0.1", servername: "localhost" };

export function benchIdentities(spec: DeviceSpec, kind: "dev" | "mqtt" | "amqp"): DeviceIdentity[] {
  const se = Math.floor(Date.now() / 1000) + 3600;
  return spec.indices.map((i) => {
    const registrationId = `bench-${kind}-${spec.run}-${i}`;
    const sr = `${spec.idScope}/registrations/${registrationId}`;
    const token = createSasToken(deriveDeviceKey(spec.groupKey, registrationId), sr, se, "registration");
    return { idScope: spec.idScope, registrationId, token };
  });
}
