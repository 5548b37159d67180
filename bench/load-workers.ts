// The load-generator threads (load-worker.ts) as the runners see them, and the CPU counters
// both runners (run.ts, cluster.ts) read.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type { FromWorker, ToWorker } from "./load-worker.js";

const here = dirname(fileURLToPath(import.meta.url));

/** A generator thread and a way to wait for its next message. */
export class LoadWorker {
  readonly worker = new Worker(join(here, "load-worker.js"));
  #waiting: ((m: FromWorker) => void) | undefined;
  #failure: Error | undefined;

  constructor() {
    this.worker.on("message", (m: FromWorker) => {
      const w = this.#waiting;
      this.#waiting = undefined;
      w?.(m);
    });
    this.worker.on("error", (err) => {
      this.#failure = err;
      this.#waiting?.({ type: "error", message: String(err) });
    });
  }

  ask(m: ToWorker): Promise<FromWorker> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve) => {
      this.#waiting = resolve;
      this.worker.postMessage(m);
    });
  }
}

/** CPU seconds (user + system) of a process, from /proc; undefined where that is not available. */
export function processCpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Fields 14 and 15 of stat (utime, stime), counted after the ")" that ends field 2; 100 ticks/s.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

export const generatorCpuSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
