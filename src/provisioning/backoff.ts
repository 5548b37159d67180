// How long devices are told to wait (issue "Reliability under faults" 4): never all the same
// number (10,000 throttled devices told "1" come back together, 19 times each), and longer the
// longer an operation has been working (500 devices polling a hanging webhook once a second cost
// half a core). Pure, so the numbers are tested as numbers.

/** `seconds` plus up to half of it again (at least 1 s of spread), in whole seconds. */
export function spreadRetryAfter(seconds: number, random: () => number = Math.random): number {
  const base = Math.max(1, Math.ceil(seconds));
  const spread = Math.max(1, Math.floor(base / 2));
  return base + Math.floor(random() * (spread + 1));
}

/**
 * The Retry-After of an operation still working: `base` for its first 10 seconds, then a tenth of
 * its age, up to 15 s.
 */
export function pollInterval(ageMs: number, base: number): number {
  const age = Math.max(0, ageMs) / 1000;
  if (age < 10) return base;
  return Math.max(base, Math.min(15, Math.ceil(age / 10)));
}

/** Retry-After for a register refused because the node is at its in-flight bound. */
export function overloadRetryAfter(load: number, bound: number, random: () => number = Math.random): number {
  // 2 s at the bound, more the further past it (requests still arrive while the work drains).
  return spreadRetryAfter(2 * Math.max(1, load / Math.max(1, bound)), random);
}
