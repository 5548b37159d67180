// Who carries the registrations that are still working (a slow webhook or hub): the node that
// started them. Behind an interface because, once several nodes share a database, another node
// must be able to take over what a dead node carried (issue "Reliability under faults").
export interface InFlightRegistrations {
  /** Carry `work` (which never rejects) until it ends. */
  carry(idScope: string, operationId: string, work: Promise<unknown>): void;
  /** How many are being carried now. */
  readonly size: number;
  /** Resolves once every carried registration has ended, or after `timeoutMs`, whichever is first. */
  drain(timeoutMs: number): Promise<void>;
}

/** This node's registrations, in memory. */
export class LocalInFlight implements InFlightRegistrations {
  readonly #work = new Map<string, Promise<unknown>>();

  carry(idScope: string, operationId: string, work: Promise<unknown>): void {
    const key = `${idScope}/${operationId}`;
    this.#work.set(key, work);
    void work.finally(() => this.#work.delete(key));
  }

  get size(): number {
    return this.#work.size;
  }

  async drain(timeoutMs: number): Promise<void> {
    if (this.#work.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([Promise.allSettled([...this.#work.values()]), timeout]);
    clearTimeout(timer);
  }
}
