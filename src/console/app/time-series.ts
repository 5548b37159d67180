// Diagnostic lines (GET /diagnostics, behaviors.md §11) counted per minute for the Overview and
// Metrics charts. Pure.

export interface DiagnosticLine {
  Category: string;
  OperationName: string;
  ResultType: "Success" | "ClientError" | "Failure";
  ResultSignature: string;
  ResultDescription: string;
  DurationMs: string;
  TimeGenerated: string;
  properties: { id: string; type: string; protocol?: string };
}

export interface Bucket {
  /** The minute's start, ms since the epoch. */
  at: number;
  success: number;
  failed: number;
  /** Mean duration of the minute's operations, ms; 0 when none. */
  meanMs: number;
}

const MINUTE = 60_000;

/** `minutes` buckets ending with the current minute, of the lines matching `category`. */
export function perMinute(lines: readonly DiagnosticLine[], category: string, minutes: number, now: number): Bucket[] {
  const end = Math.floor(now / MINUTE) * MINUTE;
  const start = end - (minutes - 1) * MINUTE;
  const buckets: Bucket[] = Array.from({ length: minutes }, (_, i) => ({
    at: start + i * MINUTE,
    success: 0,
    failed: 0,
    meanMs: 0,
  }));
  const totals = new Array<number>(minutes).fill(0);
  for (const line of lines) {
    if (line.Category !== category) continue;
    const t = Date.parse(line.TimeGenerated);
    const i = Math.floor((t - start) / MINUTE);
    const b = buckets[i];
    if (!b) continue;
    if (line.ResultType === "Success") b.success++;
    else b.failed++;
    totals[i] = (totals[i] ?? 0) + (Number(line.DurationMs) || 0);
  }
  for (const [i, b] of buckets.entries()) {
    const n = b.success + b.failed;
    b.meanMs = n === 0 ? 0 : Math.round((totals[i] ?? 0) / n);
  }
  return buckets;
}

/** Failures, newest first: what the Overview lists under "Recent failures". */
export const recentFailures = (lines: readonly DiagnosticLine[], category: string, n: number): DiagnosticLine[] =>
  lines
    .filter((l) => l.Category === category && l.ResultType !== "Success")
    .slice(-n)
    .reverse();
