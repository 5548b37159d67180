// Faults injected for rehearsals (domain/faults.ts) at their place in a registration: after the
// device attested (its group is known), before the rate limit. A 429 or 500 is the register
// call's answer; a delay holds the work, so the device gets `assigning` and polls.
import { FaultCounter, type FaultRule } from "../domain/faults.js";

export interface InjectedFault {
  rule: FaultRule;
}

export class FaultInjection {
  readonly #rules: { rule: FaultRule; counter: FaultCounter }[];

  constructor(
    rules: readonly FaultRule[],
    /** Told of each fault injected: for the log and the metrics. */
    private readonly onInjected: (rule: FaultRule, service: string, registrationId: string) => void,
  ) {
    this.#rules = rules.map((rule) => ({ rule, counter: new FaultCounter(rule.share) }));
  }

  get empty(): boolean {
    return this.#rules.length === 0;
  }

  /** The fault this registration gets, if any: every matching rule counts it, the first due decides. */
  pick(service: string, groupId: string | undefined, registrationId: string): FaultRule | undefined {
    let chosen: FaultRule | undefined;
    for (const { rule, counter } of this.#rules) {
      if (rule.instance && rule.instance.toLowerCase() !== service.toLowerCase()) continue;
      if (rule.group && rule.group.toLowerCase() !== groupId?.toLowerCase()) continue;
      if (counter.next() && !chosen) chosen = rule;
    }
    if (chosen) this.onInjected(chosen, service, registrationId);
    return chosen;
  }
}
