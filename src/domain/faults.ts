// Faults injected for rehearsals (issue 21): a share of registrations answered 429 or 500, or
// made to take a while, per provisioning service or enrollment group, so a device team can
// watch its backoff and polling deterministically. Pure: the spec and the choice of registrations.

export interface FaultRule {
  /** What the registration gets: a 429 (Retry-After 3), a 500, or a delay before its work. */
  fault: { kind: "429" } | { kind: "500" } | { kind: "delay"; ms: number };
  /** The share of matching registrations, 0 < share ≤ 1. */
  share: number;
  /** Only this provisioning service's registrations (name, any case). */
  instance?: string;
  /** Only devices of this enrollment group (id, any case). */
  group?: string;
  /** The rule as written, for the log and the metrics. */
  text: string;
}

/** `429 25%`, `500 10% group=lab-devices`, `delay=5s 100% instance=provisio`. */
export function parseFaultRule(text: string): FaultRule {
  const words = text.trim().split(/\s+/);
  const [what = "", shareText = "", ...filters] = words;
  const bad = (why: string) =>
    new Error(
      `fault '${text.trim()}' ${why}: write '<429|500|delay=Ns> <share>% [instance=<name>] [group=<id>]', e.g. '429 25% group=lab-devices'.`,
    );
  const delay = /^delay=(\d{1,4})(ms|s)$/.exec(what);
  const fault: FaultRule["fault"] =
    what === "429" || what === "500"
      ? { kind: what }
      : delay
        ? { kind: "delay", ms: Number(delay[1]) * (delay[2] === "s" ? 1000 : 1) }
        : (() => {
            throw bad("names no fault");
          })();
  const share = /^(\d{1,3}(?:\.\d+)?)%$/.exec(shareText);
  const percent = share ? Number(share[1]) : Number.NaN;
  if (!(percent > 0 && percent <= 100)) throw bad("needs a share from 0% (exclusive) to 100%");
  const rule: FaultRule = { fault, share: percent / 100, text: text.trim() };
  for (const f of filters) {
    const m = /^(instance|group)=(.+)$/.exec(f);
    if (!m) throw bad(`has '${f}', neither instance= nor group=`);
    rule[m[1] as "instance" | "group"] = m[2] as string;
  }
  return rule;
}

/** Faults separated by `;` (the form of PROVISIO_FAULTS and of repeated --fault flags). */
export const parseFaultRules = (text: string): FaultRule[] =>
  text
    .split(";")
    .map((t) => t.trim())
    .filter((t) => t !== "")
    .map(parseFaultRule);

/**
 * Which matching registrations get a rule's fault: every one once the shares add up to a whole,
 * so 25% is the 4th, 8th, 12th, … — the same on every run.
 */
export class FaultCounter {
  #owed = 0;

  constructor(readonly share: number) {}

  next(): boolean {
    this.#owed += this.share;
    if (this.#owed + 1e-9 < 1) return false;
    this.#owed -= 1;
    return true;
  }
}
