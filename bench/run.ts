// `npm run bench`: registrations/s and latency of `provisio serve` against a bare node:https
// baseline on the same TLS material, both measured in this run (see bench/report.ts for output).
//
// Environment:
//   BENCH_DEVICES       devices per measurement (default 3000)
//   BENCH_CONCURRENCY   devices in flight (default 64)
//   BENCH_WORKERS       load-generator worker threads (default 2: one thread cannot saturate even the
//                       baseline on 2 cores, its client-side TLS costs about twice the server side)
//   BENCH_WARMUP        warm-up registrations before each measurement (default min(200, devices))
//   BENCH_ROUNDS        measurements per server, interleaved (default 2)
//   BENCH_MAX_SECONDS   per measurement; devices not started by then count as failures (default 35)
//   BENCH_BUDGET_SECONDS  for all measurements together, the same way (default 150: `npm run bench` stays < 3 min)
//   BENCH_SAVE=1        also write the report to bench/results/latest.md
//   BENCH_PROFILE=1     run both servers under `node --cpu-prof` and append their hottest functions
//   BENCH_CA_PER_CONNECTION=1  pass `ca` on every request instead of one shared SecureContext
// Fast sanity run: BENCH_DEVICES=200 BENCH_CONCURRENCY=16 npm run bench
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type { LoadResult } from "./load.js";
import type { FromWorker, ToWorker } from "./load-worker.js";
import { summariseProfile } from "./profile.js";
import { type Measurement, measure, renderReport, type ServerName } from "./report.js";
import {
  createEnrollmentGroup,
  type Provisio,
  ROOT,
  removeDir,
  type ServerChild,
  startBaseline,
  startProvisio,
} from "./servers.js";

const here = dirname(fileURLToPath(import.meta.url));

function envInt(name: string, fallback: number, min = 1): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer ≥ ${min}, not '${raw}'`);
  return n;
}

const DEVICES = envInt("BENCH_DEVICES", 3000);
const CONCURRENCY = envInt("BENCH_CONCURRENCY", 64);
const WORKERS = Math.min(envInt("BENCH_WORKERS", 2), CONCURRENCY);
const WARMUP = envInt("BENCH_WARMUP", Math.min(200, DEVICES), 0);
const ROUNDS = envInt("BENCH_ROUNDS", 2);
const MAX_SECONDS = envInt("BENCH_MAX_SECONDS", 35);
const BUDGET_SECONDS = envInt("BENCH_BUDGET_SECONDS", 150);
const WARMUP_MAX_SECONDS = 15;
const SAVE = process.env.BENCH_SAVE === "1";
const PROFILE = process.env.BENCH_PROFILE === "1";

/** A generator thread and a way to wait for its next message. */
class LoadWorker {
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
function processCpuSeconds(pid: number | undefined): number | undefined {
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

const generatorCpuSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

interface Target {
  name: ServerName;
  port: number;
  child: ServerChild;
}

/** One load run over every worker: prepare all (tokens built), start all at once, collect. */
async function drive(
  workers: readonly LoadWorker[],
  target: Target,
  ctx: { caPem: string; idScope: string; groupKey: string },
  run: string,
  count: number,
  deadline: number,
): Promise<LoadResult[]> {
  const n = workers.length;
  const prepared = await Promise.all(
    workers.map((w, k) =>
      w.ask({
        type: "prepare",
        port: target.port,
        caPem: ctx.caPem,
        concurrency: Math.floor(CONCURRENCY / n) + (k < CONCURRENCY % n ? 1 : 0),
        spec: {
          idScope: ctx.idScope,
          groupKey: ctx.groupKey,
          run,
          indices: Array.from({ length: count }, (_, i) => i).filter((i) => i % n === k),
        },
      }),
    ),
  );
  for (const m of prepared) if (m.type !== "ready") throw new Error(`worker: ${JSON.stringify(m)}`);
  const done = await Promise.all(workers.map((w) => w.ask({ type: "go", deadline })));
  return done.map((m) => {
    if (m.type !== "done") throw new Error(`worker: ${JSON.stringify(m)}`);
    return m.result;
  });
}

async function main(): Promise<void> {
  const startLoad = loadavg();
  const tag = Math.random().toString(36).slice(2, 6);
  const dataDir = mkdtempSync(join(tmpdir(), "provisio-bench-"));
  const profileDirs = PROFILE
    ? {
        provisio: mkdtempSync(join(tmpdir(), "provisio-bench-prof-")),
        baseline: mkdtempSync(join(tmpdir(), "provisio-bench-prof-")),
      }
    : undefined;
  const profileArgs = (dir: string | undefined): string[] => (dir ? ["--cpu-prof", `--cpu-prof-dir=${dir}`] : []);
  const cleanups: (() => Promise<unknown> | unknown)[] = [() => removeDir(dataDir)];
  if (profileDirs)
    cleanups.push(
      () => removeDir(profileDirs.provisio),
      () => removeDir(profileDirs.baseline),
    );
  const cleanup = async () => {
    while (cleanups.length > 0) await cleanups.pop()?.();
  };
  const onSignal = () => {
    void cleanup().finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  let profileSummary: string | undefined;
  try {
    const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);
    log(`data dir ${dataDir}; N=${DEVICES} C=${CONCURRENCY} workers=${WORKERS} warm-up=${WARMUP} rounds=${ROUNDS}`);
    const provisio: Provisio = await startProvisio(dataDir, profileArgs(profileDirs?.provisio));
    cleanups.push(() => provisio.stop());
    const groupKey = await createEnrollmentGroup(provisio, "bench-group");
    const baseline = await startBaseline(dataDir, profileArgs(profileDirs?.baseline));
    cleanups.push(() => baseline.stop());
    const workers = Array.from({ length: WORKERS }, () => new LoadWorker());
    cleanups.push(() => Promise.all(workers.map((w) => w.worker.terminate())));

    const ctx = { caPem: provisio.caPem, idScope: provisio.info.idScope, groupKey };
    const targets: Target[] = [
      { name: "baseline", port: baseline.port, child: baseline },
      { name: "provisio", port: provisio.info.ports.https, child: provisio },
    ];
    const measurements: Measurement[] = [];
    const budgetEnd = Date.now() + BUDGET_SECONDS * 1000;
    const deadline = (seconds: number) => Math.min(Date.now() + seconds * 1000, budgetEnd);
    let warmupFailures = 0;
    for (let round = 1; round <= ROUNDS; round++) {
      for (const target of targets) {
        const run = `${tag}-${target.name[0]}${round}`;
        if (WARMUP > 0) {
          const warm = await drive(workers, target, ctx, `${run}w`, WARMUP, deadline(WARMUP_MAX_SECONDS));
          warmupFailures += warm.reduce((n, r) => n + Object.values(r.failures).reduce((a, b) => a + b, 0), 0);
        }
        await new Promise((r) => setTimeout(r, 300)); // let the warm-up's closing sockets settle
        const serverCpu0 = processCpuSeconds(target.child.child.pid);
        const generatorCpu0 = generatorCpuSeconds();
        const parts = await drive(workers, target, ctx, run, DEVICES, deadline(MAX_SECONDS));
        const serverCpu1 = processCpuSeconds(target.child.child.pid);
        const m = measure(target.name, round, DEVICES, parts, {
          ...(serverCpu0 !== undefined && serverCpu1 !== undefined ? { server: serverCpu1 - serverCpu0 } : {}),
          generator: generatorCpuSeconds() - generatorCpu0,
        });
        measurements.push(m);
        log(
          `round ${round} ${target.name}: ${m.rate.toFixed(0)} registrations/s, p50 ${m.p50.toFixed(1)} ms, ` +
            `p99 ${m.p99.toFixed(1)} ms, ${m.failed} failed`,
        );
        if (target.child.child.exitCode !== null) {
          throw new Error(`${target.name} exited during the run: ${target.child.output()}`);
        }
      }
    }

    if (profileDirs) {
      // Profiles are written at exit.
      await Promise.all([provisio.stop(), baseline.stop()]);
      const summaries: string[] = [];
      for (const [name, dir, top] of [
        ["provisio", profileDirs.provisio, 25],
        ["baseline", profileDirs.baseline, 10],
      ] as const) {
        const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
        if (!file) {
          summaries.push(`(no .cpuprofile was written by the ${name} process)`);
          continue;
        }
        const title = `${name} server CPU profile (\`node --cpu-prof\`, whole process lifetime)`;
        summaries.push(summariseProfile(join(dir, file), ROOT, title, top));
        if (SAVE) {
          mkdirSync(join(ROOT, "bench", "results"), { recursive: true });
          copyFileSync(join(dir, file), join(ROOT, "bench", "results", `${name}.cpuprofile`));
        }
      }
      profileSummary = summaries.join("\n\n");
    }
    const serverLog = provisio.output().trim();
    const report = renderReport(measurements, {
      date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
      devices: DEVICES,
      warmup: WARMUP,
      concurrency: CONCURRENCY,
      workers: WORKERS,
      rounds: ROUNDS,
      cpus: availableParallelism(),
      cpuModel: cpus()[0]?.model.trim() ?? "unknown",
      node: process.version,
      platform: `${process.platform} ${process.arch}`,
      loadAverage: startLoad,
      warmupFailures,
      timeLimitSeconds: MAX_SECONDS,
      budgetSeconds: BUDGET_SECONDS,
      ...(profileSummary ? { profile: `${profileSummary}\n\n(Rates above were measured under the profiler.)` } : {}),
    });
    process.stdout.write(report);
    if (serverLog) {
      log(`provisio wrote ${serverLog.split("\n").length} log line(s) at warn level or above; the last ones:`);
      process.stderr.write(`${serverLog.split("\n").slice(-5).join("\n")}\n`);
    }
    if (SAVE) {
      mkdirSync(join(ROOT, "bench", "results"), { recursive: true });
      writeFileSync(join(ROOT, "bench", "results", "latest.md"), report);
      log("report written to bench/results/latest.md");
    }
  } finally {
    await cleanup();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`[bench] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
