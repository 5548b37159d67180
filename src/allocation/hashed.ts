// Evenly weighted distribution (`hashed`), behaviors.md §4.2: weighted rendezvous hashing keyed on the lower-cased
// registration id. Each hub scores −weight / ln(U) with U ∈ (0,1) drawn from SHA-256(regId + "\n" + hubName); the
// highest score wins. Deterministic, independent of hub order, and adding a hub moves only the ids it now wins.
import * as nodeCrypto from "node:crypto";

export interface WeightedHub {
  name: string;
  /** 1–1000 (management.md §4); anything not a positive finite number counts as 1, like null. */
  allocationWeight: number;
}

type Sha256Hex = (data: string) => string;

// crypto.hash (Node ≥ 20.12) is a one-shot digest without the Hash object, noticeably cheaper per call; older
// Node 20 releases fall back to createHash. Both produce the same SHA-256 bytes, so results never differ. Hex output
// is used because creating a Buffer per digest costs more than hashing these short inputs.
const sha256Hex: Sha256Hex =
  typeof nodeCrypto.hash === "function"
    ? (data) => nodeCrypto.hash("sha256", data, "hex")
    : (data) => nodeCrypto.createHash("sha256").update(data).digest("hex");

const TWO_POW_MINUS_52 = 2 ** -52;

/**
 * U ∈ (0,1) from the first 8 bytes of SHA-256: their top 52 bits (13 hex digits) as an integer n, U = (n + ½)·2⁻⁵².
 * With 52 bits the half-step is exactly representable, so U is never 0 or 1 (53 bits would round the top value up
 * to 1.0). Exported for tests.
 */
export function unitInterval(data: string): number {
  const n = Number.parseInt(sha256Hex(data).slice(0, 13), 16);
  return (n + 0.5) * TWO_POW_MINUS_52;
}

/** Score of one hub for a lower-cased registration id; exported for tests and diagnostics. */
export function rendezvousScore(registrationIdLower: string, hub: WeightedHub): number {
  const w = hub.allocationWeight;
  const weight = w > 0 && Number.isFinite(w) ? w : 1;
  // ln(U) < 0 for U ∈ (0,1), so the score is positive; larger U and larger weight both raise it.
  return -weight / Math.log(unitInterval(`${registrationIdLower}\n${hub.name.toLowerCase()}`));
}

/**
 * The hub (its `name` as given) that the registration id hashes to; undefined for an empty list.
 * Case-insensitive in both the id and hub names; exact score ties (practically impossible) go to the smaller
 * lower-cased name so the answer never depends on the order of `hubs`.
 */
export function weightedHash(
  registrationId: string,
  hubs: readonly { name: string; allocationWeight: number }[],
): string | undefined {
  const count = hubs.length;
  if (count === 0) return undefined;
  const first = hubs[0] as WeightedHub;
  if (count === 1) return first.name;
  const id = registrationId.toLowerCase();
  let best = first;
  let bestScore = rendezvousScore(id, first);
  for (let i = 1; i < count; i++) {
    const hub = hubs[i] as WeightedHub;
    const score = rendezvousScore(id, hub);
    if (score > bestScore || (score === bestScore && hub.name.toLowerCase() < best.name.toLowerCase())) {
      best = hub;
      bestScore = score;
    }
  }
  return best.name;
}
