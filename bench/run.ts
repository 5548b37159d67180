// `npm run bench`: registrations/s and latency of `provisio serve` against bare baseline servers on
// the same TLS material, all measured in this run (see bench/report.ts for output). Scenarios:
//   https  symmetric-key group devices, `PUT …/register` over HTTPS (baseline: bare node:https)
//   mqtt   the same group over MQTT 3.1.1 on TLS (baseline: bare node:tls + mqtt-packet, bench/baseline-mqtt-server.ts)
//   amqp   the same group over AMQP 1.0 on TLS (baseline: bare node:tls + rhea, bench/baseline-amqp-server.ts)
//   postgres  the https workload against one node on SQLite, one on PostgreSQL and two on one PostgreSQL
//          (bench/cluster.ts; no baseline: the setups are compared with each other)
//   x509   X.509 group devices (leaf + intermediate under a verified root) over HTTPS with mutual TLS
//          (baseline: the bare node:https server as a mutual-TLS server: it asks for client certificates
//          and verifies each chain up to the bench root, as `requestCert` + `ca` + `rejectUnauthorized` do)
// Every device uses a fresh TLS connection. Each scenario runs its own interleaved rounds.
//
// Environment:
//   BENCH_SCENARIOS     comma list of scenarios, in order (default https,mqtt,amqp,x509,postgres)
//   BENCH_PG_DEVICES    devices per measurement, postgres (default min(2000, BENCH_DEVICES))
//   BENCH_DEVICES       devices per measurement, https (default 3000)
//   BENCH_MQTT_DEVICES  devices per measurement, mqtt (default BENCH_DEVICES)
//   BENCH_AMQP_DEVICES  devices per measurement, amqp (default BENCH_DEVICES)
//   BENCH_X509_DEVICES  devices per measurement, x509 (default min(1500, BENCH_DEVICES); each needs its own
//                       leaf certificate, issued in the generator threads before timing: 5-13 ms of CPU each)
//   BENCH_X509_CACHE=0  x509: do not keep the CA and leaves in $TMPDIR/provisio-bench-x509-cache for later runs
//   BENCH_CONCURRENCY   devices in flight (default 64)
//   BENCH_WORKERS       load-generator worker threads (default 2: one thread cannot saturate even the
//                       baseline on 2 cores, its client-side TLS costs about twice the server side)
//   BENCH_WARMUP        warm-up registrations before each measurement after a server's first (default
//                       min(500, devices))
//   BENCH_FIRST_WARMUP  warm-up registrations before a server's first measurement of a scenario (default
//                       5 × BENCH_WARMUP): long enough for V8 to have optimised the servers' hot paths, so both
//                       are measured in their steady state. provisio's own functions run about once per
//                       registration, and Node 20's V8 optimises such a function only after some thousands of
//                       calls: with 500, `--log-code` still showed ~130 functions optimised during the first
//                       x509 measurement and ~30 during the second.
//   BENCH_ROUNDS        measurements per server and scenario, interleaved (default 3; the median counts)
//   BENCH_MAX_SECONDS   per measurement; devices not started by then count as failures (default 35)
//   BENCH_BUDGET_SECONDS  for all measurements (warm-ups included) of all scenarios together, the same way
//                       (default 210: the default `npm run bench` stays < 4 min). A scenario may use what is
//                       left minus 40 s for each scenario still to come.
//   BENCH_SAVE=1        also write the report to bench/results/latest.md
//   BENCH_PROFILE=1     run the servers under `node --cpu-prof` and append their hottest functions (provisio's
//                       profile spans every scenario of the run: profile one with BENCH_SCENARIOS=mqtt, say)
//   BENCH_CA_PER_CONNECTION=1  https: pass `ca` on every request instead of one shared SecureContext
//   BENCH_X509_BASELINE=request  x509: a baseline that asks for client certificates but verifies nothing
//                       (the earlier x509 baseline; it does less than any mutual-TLS server has to)
// Fast sanity run: BENCH_DEVICES=200 BENCH_CONCURRENCY=16 npm run bench
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { runPostgresScenario } from "./cluster.js";
import type { LoadResult } from "./load.js";
import type { Work } from "./load-worker.js";
import { generatorCpuSeconds, LoadWorker, processCpuSeconds } from "./load-workers.js";
import { benchCa } from "./load-x509.js";
import { summariseProfile } from "./profile.js";
import {
  type Measurement,
  measure,
  renderReport,
  type ScenarioSection,
  type ServerName,
  TARGET_RATE,
} from "./report.js";
import {
  type BaselineKind,
  createEnrollmentGroup,
  createX509EnrollmentGroup,
  type Provisio,
  ROOT,
  removeDir,
  type ServerChild,
  startBaseline,
  startProvisio,
} from "./servers.js";

const _here = dirname(fileURLToPath(import.meta.url));

function envInt(name: string, fallback: number, min = 1): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer ≥ ${min}, not '${raw}'`);
  return n;
}

const SCENARIO_NAMES = ["https", "mqtt", "amqp", "x509", "postgres"] as const;
type ScenarioName = (typeof SCENARIO_NAMES)[number];
/** Scenarios of one provisio against a baseline; `postgres` compares setups of provisio (cluster.ts). */
type BaselineScenario = Exclude<ScenarioName, "postgres">;

function scenariosFromEnv(): ScenarioName[] {
  const raw = process.env.BENCH_SCENARIOS?.trim() || SCENARIO_NAMES.join(",");
  const names = raw
    .split(",")
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== "");
  const out: ScenarioName[] = [];
  for (const n of names) {
    const known = SCENARIO_NAMES.find((k) => k === n);
    if (!known) throw new Error(`BENCH_SCENARIOS: unknown scenario '${n}' (known: ${SCENARIO_NAMES.join(", ")})`);
    if (!out.includes(known)) out.push(known);
  }
  if (out.length === 0) throw new Error("BENCH_SCENARIOS names no scenario");
  return out;
}

const SCENARIOS = scenariosFromEnv();
const DEVICES = envInt("BENCH_DEVICES", 3000);
const DEVICES_BY_SCENARIO: Record<ScenarioName, number> = {
  https: DEVICES,
  mqtt: envInt("BENCH_MQTT_DEVICES", DEVICES),
  amqp: envInt("BENCH_AMQP_DEVICES", DEVICES),
  x509: envInt("BENCH_X509_DEVICES", Math.min(1500, DEVICES)),
  postgres: envInt("BENCH_PG_DEVICES", Math.min(2000, DEVICES)),
};
const CONCURRENCY = envInt("BENCH_CONCURRENCY", 64);
const WORKERS = Math.min(envInt("BENCH_WORKERS", 2), CONCURRENCY);
const warmupFor = (devices: number): number => envInt("BENCH_WARMUP", Math.min(500, devices), 0);
const firstWarmupFor = (warmup: number): number => envInt("BENCH_FIRST_WARMUP", 5 * warmup, 0);
const ROUNDS = envInt("BENCH_ROUNDS", 3);
const MAX_SECONDS = envInt("BENCH_MAX_SECONDS", 35);
const BUDGET_SECONDS = envInt("BENCH_BUDGET_SECONDS", 210);
/** Budget held back for each scenario still to come. */
const RESERVE_SECONDS = 40;
const WARMUP_MAX_SECONDS = 15;
const FIRST_WARMUP_MAX_SECONDS = 40;
const X509_CACHE_DIR = process.env.BENCH_X509_CACHE === "0" ? undefined : join(tmpdir(), "provisio-bench-x509-cache");
const SAVE = process.env.BENCH_SAVE === "1";
const PROFILE = process.env.BENCH_PROFILE === "1";
const X509_BASELINE_VERIFIES = process.env.BENCH_X509_BASELINE !== "request";

interface Target {
  name: ServerName;
  port: number;
  child: ServerChild;
}

/** One scenario, set up: what the workers build and how the report presents it. */
interface Scenario {
  section: Omit<ScenarioSection, "measurements" | "warmupFailures">;
  baselineKind: BaselineKind;
  /** PEM file of the certificates the baseline verifies client chains up to (mutual TLS). */
  baselineTrust?: string;
  provisioPort: number;
  /** The work of one worker: the devices `indices` of the run `run`. */
  work(run: string, indices: number[]): Work;
  /** The run label (part of every registration id) of a measurement. */
  runLabel(server: ServerName, round: number, warmup: boolean): string;
}

/**
 * Prepare every worker for one load run of `count` devices (requests built, X.509 leaves read or
 * issued); resolves to the number of leaves issued.
 */
async function prepare(
  workers: readonly LoadWorker[],
  port: number,
  caPem: string,
  scenario: Scenario,
  run: string,
  count: number,
): Promise<number> {
  const n = workers.length;
  const prepared = await Promise.all(
    workers.map((w, k) =>
      w.ask({
        type: "prepare",
        port,
        caPem,
        concurrency: Math.floor(CONCURRENCY / n) + (k < CONCURRENCY % n ? 1 : 0),
        work: scenario.work(
          run,
          Array.from({ length: count }, (_, i) => i).filter((i) => i % n === k),
        ),
      }),
    ),
  );
  let issued = 0;
  for (const m of prepared) {
    if (m.type !== "ready") throw new Error(`worker: ${JSON.stringify(m)}`);
    issued += m.issued ?? 0;
  }
  return issued;
}

/** Start the prepared load on every worker at once; collect. */
async function go(workers: readonly LoadWorker[], deadline: number): Promise<LoadResult[]> {
  const done = await Promise.all(workers.map((w) => w.ask({ type: "go", deadline })));
  return done.map((m) => {
    if (m.type !== "done") throw new Error(`worker: ${JSON.stringify(m)}`);
    return m.result;
  });
}

/** The symmetric-key group of the https and mqtt scenarios, created once per run; its primary key. */
let symmetricGroupKey: Promise<string> | undefined;

async function setUpScenario(name: BaselineScenario, provisio: Provisio, tag: string): Promise<Scenario> {
  const devices = DEVICES_BY_SCENARIO[name];
  const warmup = warmupFor(devices);
  const common = { key: name, devices, warmup, firstWarmup: firstWarmupFor(warmup) };
  const idScope = provisio.info.idScope;
  const perServer = (server: ServerName, round: number, warmup: boolean) =>
    `${tag}-${server[0]}${round}${warmup ? "w" : ""}`;
  switch (name) {
    case "https": {
      symmetricGroupKey ??= createEnrollmentGroup(provisio, "bench-group");
      const groupKey = await symmetricGroupKey;
      return {
        section: {
          ...common,
          title: "HTTPS, symmetric-key group",
          workload:
            "symmetric-key enrollment group, one derived key and SAS token per device, built-in hub · " +
            "`PUT …/register` on a fresh TLS connection.",
          baselineLabel: "baseline (bare `node:https`, same key/cert, trivial 200)",
          targetRate: TARGET_RATE,
        },
        baselineKind: "https",
        provisioPort: provisio.info.ports.https,
        work: (run, indices) => ({ kind: "https", spec: { idScope, groupKey, run, indices } }),
        runLabel: perServer,
      };
    }
    case "mqtt": {
      symmetricGroupKey ??= createEnrollmentGroup(provisio, "bench-group");
      const groupKey = await symmetricGroupKey;
      return {
        section: {
          ...common,
          title: "MQTT, symmetric-key group",
          workload:
            "the same symmetric-key group over MQTT 3.1.1 on TLS: per device a fresh TLS connection, CONNECT " +
            "(SAS token as password, keepalive 60, clean session) → CONNACK, SUBSCRIBE `$dps/registrations/res/#` " +
            "QoS 1 → SUBACK, PUBLISH QoS 1 `…/PUT/iotdps-register/?$rid=1` → PUBACK + `res/200` assigned, " +
            "DISCONNECT; each step waits for the previous answer, as the SDK does.",
          baselineLabel:
            "baseline (bare `node:tls` + mqtt-packet, same key/cert, CONNACK/SUBACK/PUBACK + trivial res/200)",
        },
        baselineKind: "mqtt",
        provisioPort: provisio.info.ports.mqtt,
        work: (run, indices) => ({ kind: "mqtt", spec: { idScope, groupKey, run, indices } }),
        runLabel: perServer,
      };
    }
    case "amqp": {
      symmetricGroupKey ??= createEnrollmentGroup(provisio, "bench-group");
      const groupKey = await symmetricGroupKey;
      return {
        section: {
          ...common,
          title: "AMQP, symmetric-key group",
          workload:
            "the same symmetric-key group over AMQP 1.0 on TLS: per device a fresh TLS connection, SASL PLAIN " +
            "(SAS token) → outcome, open, begin, the answer link with credit and the request link → credit, the " +
            "register message → the answer (assigned), close; each step waits for the previous answer, as the SDK does.",
          baselineLabel:
            "baseline (bare `node:tls` + one rhea container, same key/cert, SASL PLAIN taking anyone + trivial answer)",
        },
        baselineKind: "amqp",
        provisioPort: provisio.info.ports.amqp,
        work: (run, indices) => ({ kind: "amqp", spec: { idScope, groupKey, run, indices } }),
        runLabel: perServer,
      };
    }
    case "x509": {
      const t0 = Date.now();
      const ca = await benchCa(X509_CACHE_DIR);
      await createX509EnrollmentGroup(provisio, "bench-x509", "bench-root", ca.rootPem, ca.intermediate.certPem);
      const setupSeconds = (Date.now() - t0) / 1000;
      const { intermediate: issuer, leavesDir } = ca;
      const baselineTrust = X509_BASELINE_VERIFIES ? join(provisio.dataDir, "bench-x509-root.pem") : undefined;
      if (baselineTrust) writeFileSync(baselineTrust, ca.rootPem);
      return {
        section: {
          ...common,
          title: "X.509 group over HTTPS, mutual TLS",
          workload:
            "X.509 enrollment group whose signing certificate is an intermediate under a root uploaded as verified · " +
            "per device its own ECDSA P-256 leaf (CN = registration id) presented with the intermediate in a " +
            "fresh mutual-TLS handshake, `PUT …/register` without Authorization, built-in hub.",
          baselineLabel: baselineTrust
            ? "baseline (bare `node:https` mutual TLS: same key/cert, requestCert, chains verified up to the root, trivial 200)"
            : "baseline (bare `node:https`, same key/cert, requestCert without verification, trivial 200)",
          notes: [
            `Setup, not timed: root and intermediate CA (${ca.reused ? "from the cache" : "new"}), verified root ` +
              `upload and group creation ${setupSeconds.toFixed(1)} s. The leaves ` +
              (leavesDir ? `are cached in \`${X509_CACHE_DIR}\`; missing ones ` : "") +
              "are issued in the generator threads while a measurement is prepared (before its clock and CPU " +
              "counters start); the baseline and provisio measurements of a round present the same leaves, and " +
              "each registration id reaches provisio once.",
          ],
        },
        baselineKind: "https",
        ...(baselineTrust ? { baselineTrust } : {}),
        provisioPort: provisio.info.ports.https,
        work: (run, indices) => ({
          kind: "x509",
          spec: { idScope, run, indices, issuer, ...(leavesDir ? { leavesDir } : {}) },
        }),
        // Shared by both servers of a round and the same in every run (each run has a fresh data dir),
        // so that the leaves are issued once and cached.
        runLabel: (_server, round, warmup) => `${round}${warmup ? "w" : ""}`,
      };
    }
  }
}

async function main(): Promise<void> {
  const startedAt = Date.now();
  const startLoad = loadavg();
  const tag = Math.random().toString(36).slice(2, 6);
  const dataDir = mkdtempSync(join(tmpdir(), "provisio-bench-"));
  const profileDir = (): string | undefined =>
    PROFILE ? mkdtempSync(join(tmpdir(), "provisio-bench-prof-")) : undefined;
  const profileArgs = (dir: string | undefined): string[] => (dir ? ["--cpu-prof", `--cpu-prof-dir=${dir}`] : []);
  const cleanups: (() => Promise<unknown> | unknown)[] = [() => removeDir(dataDir)];
  const cleanup = async () => {
    while (cleanups.length > 0) await cleanups.pop()?.();
  };
  const onSignal = () => {
    void cleanup().finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  /** Profiles to summarise: name, directory, rows. */
  const profiles: [string, string, number][] = [];
  const withProfile = (name: string, top: number): string | undefined => {
    const dir = profileDir();
    if (dir) {
      profiles.push([name, dir, top]);
      cleanups.push(() => removeDir(dir));
    }
    return dir;
  };

  try {
    const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);
    log(
      `data dir ${dataDir}; scenarios ${SCENARIOS.join(",")}; ` +
        `N=${SCENARIOS.map((s) => `${s}:${DEVICES_BY_SCENARIO[s]}`).join(" ")} C=${CONCURRENCY} workers=${WORKERS} ` +
        `rounds=${ROUNDS}`,
    );
    const provisio: Provisio = await startProvisio(dataDir, profileArgs(withProfile("provisio", 25)));
    cleanups.push(() => provisio.stop());
    const workers = Array.from({ length: WORKERS }, () => new LoadWorker());
    cleanups.push(() => Promise.all(workers.map((w) => w.worker.terminate())));

    const sections: ScenarioSection[] = [];
    /** Seconds of load (warm-ups and measurements) so far, against BENCH_BUDGET_SECONDS. */
    let spent = 0;
    const extraSections: string[] = [];
    for (const [si, name] of SCENARIOS.entries()) {
      if (name === "postgres") {
        extraSections.push(
          await runPostgresScenario({
            workers,
            devices: DEVICES_BY_SCENARIO.postgres,
            concurrency: CONCURRENCY,
            maxSeconds: MAX_SECONDS,
            tag,
            log,
          }),
        );
        continue;
      }
      const scenario = await setUpScenario(name, provisio, tag);
      const baseline = await startBaseline(
        dataDir,
        profileArgs(withProfile(`${name} baseline`, 10)),
        scenario.baselineKind,
        scenario.baselineTrust,
      );
      cleanups.push(() => baseline.stop());
      const targets: Target[] = [
        { name: "baseline", port: baseline.port, child: baseline },
        { name: "provisio", port: scenario.provisioPort, child: provisio },
      ];
      const { devices, warmup, firstWarmup } = scenario.section;
      log(`${name}: N=${devices} warm-up=${firstWarmup} then ${warmup}`);
      const scenarioBudget = BUDGET_SECONDS - spent - RESERVE_SECONDS * (SCENARIOS.length - si - 1);
      let scenarioSpent = 0;
      /** Start the prepared load with at most `seconds`, within the scenario's budget; count the time. */
      const timed = async (seconds: number): Promise<LoadResult[]> => {
        const t0 = Date.now();
        const left = Math.max(0, scenarioBudget - scenarioSpent);
        const parts = await go(workers, t0 + Math.min(seconds, left) * 1000);
        scenarioSpent += (Date.now() - t0) / 1000;
        return parts;
      };
      const measurements: Measurement[] = [];
      let warmupFailures = 0;
      let prepareSeconds = 0;
      let issued = 0;
      const prepareTimed = async (port: number, run: string, count: number) => {
        const t0 = Date.now();
        issued += await prepare(workers, port, provisio.caPem, scenario, run, count);
        prepareSeconds += (Date.now() - t0) / 1000;
      };
      for (let round = 1; round <= ROUNDS; round++) {
        for (const target of targets) {
          const warmups = round === 1 ? firstWarmup : warmup;
          if (warmups > 0) {
            await prepareTimed(target.port, scenario.runLabel(target.name, round, true), warmups);
            const warm = await timed(round === 1 ? FIRST_WARMUP_MAX_SECONDS : WARMUP_MAX_SECONDS);
            warmupFailures += warm.reduce((n, r) => n + Object.values(r.failures).reduce((a, b) => a + b, 0), 0);
          }
          await new Promise((r) => setTimeout(r, 300)); // let the warm-up's closing sockets settle
          await prepareTimed(target.port, scenario.runLabel(target.name, round, false), devices);
          const serverCpu0 = processCpuSeconds(target.child.child.pid);
          const generatorCpu0 = generatorCpuSeconds();
          const parts = await timed(MAX_SECONDS);
          const serverCpu1 = processCpuSeconds(target.child.child.pid);
          const m = measure(target.name, round, devices, parts, {
            ...(serverCpu0 !== undefined && serverCpu1 !== undefined ? { server: serverCpu1 - serverCpu0 } : {}),
            generator: generatorCpuSeconds() - generatorCpu0,
          });
          measurements.push(m);
          log(
            `${name} round ${round} ${target.name}: ${m.rate.toFixed(0)} registrations/s, p50 ${m.p50.toFixed(1)} ms, ` +
              `p99 ${m.p99.toFixed(1)} ms, ${m.failed} failed`,
          );
          if (target.child.child.exitCode !== null) {
            throw new Error(`${target.name} exited during the run: ${target.child.output()}`);
          }
        }
      }
      spent += scenarioSpent;
      for (const w of workers) await w.ask({ type: "forget" });
      // Stopped now: its profile (if any) is written at exit, and it is idle from here on.
      await baseline.stop();
      const notes = [...(scenario.section.notes ?? [])];
      if (prepareSeconds >= 1 || issued > 0) {
        notes.push(
          `Preparing the devices (outside the measurements) took ${prepareSeconds.toFixed(1)} s in all` +
            (name === "x509"
              ? `; ${issued} leaf certificate(s) had to be issued${X509_CACHE_DIR ? ", the others came from the cache" : ""}.`
              : "."),
        );
      }
      sections.push({ ...scenario.section, notes, measurements, warmupFailures });
      log(
        `${name}: ${scenarioSpent.toFixed(0)} s of load, ${prepareSeconds.toFixed(1)} s of preparation` +
          (name === "x509" ? ` (${issued} leaves issued)` : ""),
      );
    }

    let profileSummary: string | undefined;
    if (profiles.length > 0) {
      // Profiles are written at exit.
      await provisio.stop();
      const summaries: string[] = [];
      for (const [name, dir, top] of profiles) {
        const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
        if (!file) {
          summaries.push(`(no .cpuprofile was written by the ${name} process)`);
          continue;
        }
        const span = name === "provisio" ? `, whole process lifetime: scenarios ${SCENARIOS.join(", ")}` : "";
        const title = `${name} server CPU profile (\`node --cpu-prof\`${span})`;
        summaries.push(summariseProfile(join(dir, file), ROOT, title, top));
        if (SAVE) {
          mkdirSync(join(ROOT, "bench", "results"), { recursive: true });
          copyFileSync(join(dir, file), join(ROOT, "bench", "results", `${name.replace(/\W+/g, "-")}.cpuprofile`));
        }
      }
      profileSummary = summaries.join("\n\n");
    }
    const serverLog = provisio.output().trim();
    const report = renderReport(sections, {
      date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
      concurrency: CONCURRENCY,
      workers: WORKERS,
      rounds: ROUNDS,
      cpus: availableParallelism(),
      cpuModel: cpus()[0]?.model.trim() ?? "unknown",
      node: process.version,
      platform: `${process.platform} ${process.arch}`,
      loadAverage: startLoad,
      timeLimitSeconds: MAX_SECONDS,
      budgetSeconds: BUDGET_SECONDS,
      wallSeconds: (Date.now() - startedAt) / 1000,
      ...(profileSummary ? { profile: `${profileSummary}\n\n(Rates above were measured under the profiler.)` } : {}),
    });
    const fullReport = [report, ...extraSections].join("\n");
    process.stdout.write(fullReport);
    if (serverLog) {
      log(`provisio wrote ${serverLog.split("\n").length} log line(s) at warn level or above; the last ones:`);
      process.stderr.write(`${serverLog.split("\n").slice(-5).join("\n")}\n`);
    }
    if (SAVE) {
      mkdirSync(join(ROOT, "bench", "results"), { recursive: true });
      writeFileSync(join(ROOT, "bench", "results", "latest.md"), fullReport);
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
