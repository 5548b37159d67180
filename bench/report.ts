// Measurements → paste-ready markdown.
import type { LoadResult } from "./load.js";

export type ServerName = "provisio" | "baseline";

export interface Measurement {
  server: ServerName;
  round: number;
  devices: number;
  assigned: number;
  failed: number;
  failures: Record<string, number>;
  polls: number;
  seconds: number;
  /** Registrations that ended `assigned`, per second of wall time. */
  rate: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** CPU seconds the server process used during the measurement (Linux /proc), if known. */
  serverCpuSeconds?: number;
  /** CPU seconds the load generator (this process, all threads) used during the measurement. */
  generatorCpuSeconds: number;
}

/** Nearest-rank percentile of ascending `sorted`. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? Number.NaN;
}

/** Merge the workers' results of one measurement. */
export function measure(
  server: ServerName,
  round: number,
  devices: number,
  parts: readonly LoadResult[],
  cpu: { server?: number; generator: number },
): Measurement {
  const total = parts.reduce((n, p) => n + p.latencies.length, 0);
  const all = new Float64Array(total);
  let at = 0;
  for (const p of parts) {
    all.set(p.latencies, at);
    at += p.latencies.length;
  }
  all.sort();
  const failures: Record<string, number> = {};
  for (const p of parts) {
    for (const [why, n] of Object.entries(p.failures)) failures[why] = (failures[why] ?? 0) + n;
  }
  const seconds =
    (Math.max(...parts.map((p) => p.endedAt)) - Math.min(...parts.map((p) => p.startedAt))) / 1000 || Number.NaN;
  return {
    server,
    round,
    devices,
    assigned: total,
    failed: Object.values(failures).reduce((a, b) => a + b, 0),
    failures,
    polls: parts.reduce((n, p) => n + p.polls, 0),
    seconds,
    rate: total / seconds,
    p50: percentile(all, 50),
    p90: percentile(all, 90),
    p99: percentile(all, 99),
    max: all.length > 0 ? (all[all.length - 1] ?? Number.NaN) : Number.NaN,
    ...(cpu.server !== undefined ? { serverCpuSeconds: cpu.server } : {}),
    generatorCpuSeconds: cpu.generator,
  };
}

/**
 * The round with the median rate (of an even count, the lower middle). Not the best round: the
 * best of several favours whichever server varies more, and the generator-capped baseline varies
 * more than a CPU-bound server; one lucky or unlucky round moves the median little.
 */
export function typical(ms: readonly Measurement[], server: ServerName): Measurement | undefined {
  const rounds = ms.filter((m) => m.server === server).sort((a, b) => a.rate - b.rate);
  return rounds[Math.floor((rounds.length - 1) / 2)];
}

const f0 = (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? "–" : n.toFixed(0));
const f1 = (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? "–" : n.toFixed(1));
const f2 = (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? "–" : n.toFixed(2));

/** Server CPU per assigned registration, ms; and the share of one core it used. */
const cpuPerRegistration = (m: Measurement): string =>
  m.serverCpuSeconds === undefined || m.assigned === 0 ? "–" : f2((m.serverCpuSeconds * 1000) / m.assigned);
const cpuShare = (m: Measurement, seconds: number | undefined): string =>
  seconds === undefined ? "–" : `${f0((seconds / m.seconds) * 100)} %`;

/** Lowest CPU ms per assigned registration over the rounds of `server` (server or generator side). */
function leastCpuMs(ms: readonly Measurement[], server: ServerName, of: "server" | "generator"): number | undefined {
  const perRegistration: number[] = [];
  for (const m of ms) {
    const seconds = of === "server" ? m.serverCpuSeconds : m.generatorCpuSeconds;
    if (m.server === server && m.assigned > 0 && seconds !== undefined) {
      perRegistration.push((seconds * 1000) / m.assigned);
    }
  }
  return perRegistration.length > 0 ? Math.min(...perRegistration) : undefined;
}

/**
 * Throughput ratios hide which side was saturated; CPU per registration does not. Both servers are
 * one Node thread, so 1000 / (CPU ms per registration) is what one free core could do.
 */
function capacityLines(ms: readonly Measurement[]): string[] {
  const p = leastCpuMs(ms, "provisio", "server");
  const b = leastCpuMs(ms, "baseline", "server");
  const g = leastCpuMs(ms, "baseline", "generator");
  if (p === undefined || b === undefined) return [];
  const baselineTypical = typical(ms, "baseline");
  const baselineShare =
    baselineTypical?.serverCpuSeconds !== undefined
      ? baselineTypical.serverCpuSeconds / baselineTypical.seconds
      : undefined;
  const caveat =
    baselineShare !== undefined && baselineShare < 0.9
      ? [
          `Caveat: in its median round the baseline server kept only ${f0(baselineShare * 100)} % of one core busy, so ` +
            "the load generator and the shared machine, not the baseline's own work, capped it; the throughput ratio " +
            "above then flatters provisio. The CPU-normalised ratio is the fairer comparison of the two servers.",
          "",
        ]
      : [];
  return [
    `Server CPU per registration (lowest round, user+system of the whole process from /proc): provisio ${f2(p)} ms, ` +
      `baseline ${f2(b)} ms; so one fully free core would serve at most ≈ ${f0(1000 / p)} (provisio) and ` +
      `≈ ${f0(1000 / b)} (baseline) registrations/s, a CPU-normalised ratio of ${f1((b / p) * 100)} %. ` +
      `The load generator itself spends ≈ ${f2(g)} ms of CPU per registration (client TLS handshake and ` +
      "certificate check), on the same machine.",
    "",
    ...caveat,
  ];
}

function cpuRatioRow(ms: readonly Measurement[], verdict: (ok: boolean) => string): string {
  const p = leastCpuMs(ms, "provisio", "server");
  const b = leastCpuMs(ms, "baseline", "server");
  if (p === undefined || b === undefined) return `| ≥ ${TARGET_RATIO * 100} % of baseline, CPU-normalised | – | – |`;
  return `| ≥ ${TARGET_RATIO * 100} % of baseline, CPU-normalised (server CPU per registration) | ${f1((b / p) * 100)} % | ${verdict(b / p >= TARGET_RATIO)} |`;
}

/** One scenario's measurements and how to present them. */
export interface ScenarioSection {
  /** `https`, `mqtt`, `x509`: the BENCH_SCENARIOS name. */
  key: string;
  title: string;
  /** What a simulated device does, for the section's first line. */
  workload: string;
  /** The baseline's row label in the table. */
  baselineLabel: string;
  devices: number;
  /** Warm-up registrations before each measurement; before a server's first one, `firstWarmup`. */
  warmup: number;
  firstWarmup: number;
  /** A registrations/s target on top of the ratio (HTTPS only). */
  targetRate?: number;
  measurements: Measurement[];
  warmupFailures: number;
  /** Extra lines at the end of the section (e.g. setup times). */
  notes?: string[];
}

export interface ReportContext {
  date: string;
  concurrency: number;
  workers: number;
  rounds: number;
  cpus: number;
  cpuModel: string;
  node: string;
  platform: string;
  loadAverage: number[];
  timeLimitSeconds: number;
  budgetSeconds: number;
  /** Wall time of the whole run so far (setup included), seconds. */
  wallSeconds: number;
  profile?: string;
}

export const TARGET_RATE = 1000;
export const TARGET_RATIO = 0.7;

const verdict = (ok: boolean): string => (ok ? "**PASS**" : "**MISS**");

function ratioOf(ms: readonly Measurement[]): number {
  const p = typical(ms, "provisio");
  const b = typical(ms, "baseline");
  return p && b && b.rate > 0 ? p.rate / b.rate : Number.NaN;
}

function renderSection(s: ScenarioSection): string[] {
  const ms = s.measurements;
  const p = typical(ms, "provisio");
  const b = typical(ms, "baseline");
  const ratio = ratioOf(ms);
  const row = (name: string, m: Measurement | undefined): string =>
    m
      ? `| ${name} | ${f0(m.rate)} | ${f1(m.p50)} | ${f1(m.p90)} | ${f1(m.p99)} | ${f1(m.max)} | ${m.failed} | ${cpuPerRegistration(m)} |`
      : `| ${name} | – | – | – | – | – | – | – |`;
  const anyFailures = ms.some((m) => m.failed > 0);
  const lines = [
    `### ${s.title} (\`${s.key}\`)`,
    "",
    `${s.devices} simulated devices per measurement (after warm-up registrations, not counted: ${s.firstWarmup} ` +
      `before each server's first measurement, ${s.warmup} before the others) · ` +
      `${s.workload}`,
    "",
    "| server | registrations/s | p50 ms | p90 ms | p99 ms | max ms | failures | server CPU ms/registration |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
    row("provisio", p),
    row(s.baselineLabel, b),
    "",
    `**provisio / baseline: ${f1(ratio * 100)} %**`,
    "",
    ...capacityLines(ms),
    "| target | measured | result |",
    "|---|---:|---|",
    ...(s.targetRate !== undefined
      ? [`| ≥ ${s.targetRate} registrations/s | ${f0(p?.rate)} /s | ${verdict((p?.rate ?? 0) >= s.targetRate)} |`]
      : []),
    `| ≥ ${TARGET_RATIO * 100} % of baseline | ${f1(ratio * 100)} % | ${verdict(ratio >= TARGET_RATIO)} |`,
    cpuRatioRow(ms, verdict),
    `| no failed registrations (all rounds) | ${ms.reduce((n, m) => n + m.failed, 0)} failed | ${verdict(!anyFailures)} |`,
    "",
    "All rounds:",
    "",
    "| round | server | registrations/s | p50 ms | p90 ms | p99 ms | max ms | assigned | failed | polls | wall s | server CPU | generator CPU |",
    "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...ms.map(
      (m) =>
        `| ${m.round} | ${m.server} | ${f0(m.rate)} | ${f1(m.p50)} | ${f1(m.p90)} | ${f1(m.p99)} | ${f1(m.max)} | ` +
        `${m.assigned} | ${m.failed} | ${m.polls} | ${f2(m.seconds)} | ${cpuShare(m, m.serverCpuSeconds)} | ` +
        `${cpuShare(m, m.generatorCpuSeconds)} |`,
    ),
    "",
    "(CPU columns: share of one core used during the measurement; 100 % = one core busy.)",
  ];
  if (anyFailures || s.warmupFailures > 0) {
    lines.push("", "Failures:", "");
    for (const m of ms) {
      for (const [why, n] of Object.entries(m.failures)) lines.push(`- ${m.server} round ${m.round}: ${n} × ${why}`);
    }
    if (s.warmupFailures > 0) lines.push(`- warm-up (all rounds): ${s.warmupFailures} failed`);
  }
  for (const note of s.notes ?? []) lines.push("", note);
  return lines;
}

/** One line per scenario: median-round rates, both ratios and whether every target was met. */
function summary(sections: readonly ScenarioSection[]): string[] {
  if (sections.length < 2) return [];
  return [
    "| scenario | provisio /s | baseline /s | provisio / baseline | CPU-normalised | failed | targets |",
    "|---|---:|---:|---:|---:|---:|---|",
    ...sections.map((s) => {
      const ms = s.measurements;
      const p = typical(ms, "provisio");
      const b = typical(ms, "baseline");
      const ratio = ratioOf(ms);
      const pc = leastCpuMs(ms, "provisio", "server");
      const bc = leastCpuMs(ms, "baseline", "server");
      const cpuRatio = pc !== undefined && bc !== undefined ? bc / pc : Number.NaN;
      const failed = ms.reduce((n, m) => n + m.failed, 0);
      const met =
        ratio >= TARGET_RATIO &&
        cpuRatio >= TARGET_RATIO &&
        failed === 0 &&
        (s.targetRate === undefined || (p?.rate ?? 0) >= s.targetRate);
      return (
        `| ${s.title} (\`${s.key}\`) | ${f0(p?.rate)} | ${f0(b?.rate)} | ${f1(ratio * 100)} % | ` +
        `${f1(cpuRatio * 100)} % | ${failed} | ${verdict(met)} |`
      );
    }),
    "",
  ];
}

export function renderReport(sections: readonly ScenarioSection[], ctx: ReportContext): string {
  const lines = [
    "## Provisio registration benchmark",
    "",
    `${ctx.date} · \`npm run bench\` · scenarios ${sections.map((s) => `\`${s.key}\``).join(", ")} · ` +
      `concurrency ${ctx.concurrency} · ${ctx.workers} generator worker thread(s) · every simulated device on a fresh ` +
      "TLS connection (no keep-alive, no session resumption) to 127.0.0.1 · each scenario against its own bare " +
      "baseline server on the same key and certificate, measured in the same run.",
    "",
    (ctx.rounds > 1
      ? `In each scenario each server was measured ${ctx.rounds} times, interleaved (baseline, provisio, baseline, ` +
        "provisio, …); the tables show the round with the median rate of each, to damp the noise of a shared " +
        "machine (every round is listed under each scenario). "
      : "In each scenario each server was measured once (BENCH_ROUNDS=1). ") +
      "Latency runs from the start of a device's connection to its `assigned` answer, polls included.",
    "",
    ...summary(sections),
  ];
  for (const s of sections) lines.push(...renderSection(s), "");
  lines.push(
    `Machine: ${ctx.cpus} CPU(s) (${ctx.cpuModel}), Node ${ctx.node}, ${ctx.platform}, load average at start ` +
      `${ctx.loadAverage.map((l) => l.toFixed(2)).join(" / ")} · C = ${ctx.concurrency}, ${ctx.workers} worker(s), ` +
      `time limit ${ctx.timeLimitSeconds} s per measurement and ${ctx.budgetSeconds} s for all measurements · ` +
      `whole run ${f0(ctx.wallSeconds)} s (setup included).`,
  );
  if (ctx.profile) lines.push("", ctx.profile);
  return `${lines.join("\n")}\n`;
}
