// What `provisio device simulate` prints at the end: successes and failures by reason, rate,
// latency percentiles and the hubs chosen — short enough to paste into an issue. Pure.
import type { LoadResult } from "../load/load-run.js";

export interface SimulationFacts {
  protocol: string;
  attestation: string;
  count: number;
  concurrency: number;
  /** Hub messages, when --send-message was given. */
  messages?: { sent: number; failures: Record<string, number> };
}

export interface SimulationSummary {
  protocol: string;
  attestation: string;
  devices: number;
  assigned: number;
  failed: number;
  seconds: number;
  registrationsPerSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number } | null;
  polls: number;
  hubs: Record<string, number>;
  failures: Record<string, number>;
  messages?: { sent: number; failed: number; failures: Record<string, number> };
}

/** The value below which `q` of the sorted values fall (nearest rank). */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] ?? 0;
}

const round = (n: number, digits = 1): number => Math.round(n * 10 ** digits) / 10 ** digits;

export function summarize(result: LoadResult, facts: SimulationFacts): SimulationSummary {
  const sorted = Float64Array.from(result.latencies).sort();
  const seconds = Math.max(0.001, (result.endedAt - result.startedAt) / 1000);
  const failed = Object.values(result.failures).reduce((a, b) => a + b, 0);
  const messageFailures = facts.messages ? Object.values(facts.messages.failures).reduce((a, b) => a + b, 0) : 0;
  return {
    protocol: facts.protocol,
    attestation: facts.attestation,
    devices: facts.count,
    assigned: sorted.length,
    failed,
    seconds: round(seconds, 2),
    registrationsPerSecond: round(sorted.length / seconds),
    latencyMs:
      sorted.length === 0
        ? null
        : {
            p50: round(percentile(sorted, 0.5)),
            p90: round(percentile(sorted, 0.9)),
            p99: round(percentile(sorted, 0.99)),
            max: round(sorted[sorted.length - 1] ?? 0),
          },
    polls: result.polls,
    hubs: result.hubs,
    failures: result.failures,
    ...(facts.messages
      ? { messages: { sent: facts.messages.sent, failed: messageFailures, failures: facts.messages.failures } }
      : {}),
  };
}

const byCount = (r: Record<string, number>) => Object.entries(r).sort((a, b) => b[1] - a[1]);

export function formatSummary(s: SimulationSummary): string {
  const lines = [
    `${s.devices} devices over ${s.protocol} with ${s.attestation} in ${s.seconds} s: ${s.assigned} assigned, ${s.failed} failed.`,
    `  rate       ${s.registrationsPerSecond} registrations/s${s.polls > 0 ? ` (${s.polls} polls)` : ""}`,
  ];
  if (s.latencyMs) {
    const l = s.latencyMs;
    lines.push(`  latency    p50 ${l.p50} ms · p90 ${l.p90} ms · p99 ${l.p99} ms · max ${l.max} ms`);
  }
  const hubs = byCount(s.hubs);
  if (hubs.length > 0) lines.push(`  hubs       ${hubs.map(([h, n]) => `${h} ${n}`).join(" · ")}`);
  for (const [why, n] of byCount(s.failures)) lines.push(`  failed ${String(n).padStart(5)}  ${why}`);
  if (s.messages) {
    lines.push(`  messages   ${s.messages.sent} sent to the hub, ${s.messages.failed} failed`);
    for (const [why, n] of byCount(s.messages.failures))
      lines.push(`  message failed ${String(n).padStart(5)}  ${why}`);
  }
  return `${lines.join("\n")}\n`;
}

/** One line of progress, redrawn in place on a terminal. */
export function progressLine(done: number, total: number, failed: number, perSecond: number): string {
  const width = 30;
  const filled = total === 0 ? width : Math.round((done / total) * width);
  const bar = `${"#".repeat(filled)}${".".repeat(width - filled)}`;
  return `[${bar}] ${done}/${total}  failed ${failed}  ${Math.round(perSecond)}/s`;
}
