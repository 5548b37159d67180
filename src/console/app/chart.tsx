// A per-minute bar chart in SVG: successes and failures stacked. Its text alternative sums it up.
import type { Bucket } from "./time-series.js";

export function BarChart({ title, buckets }: { title: string; buckets: Bucket[] }) {
  const max = Math.max(1, ...buckets.map((b) => b.success + b.failed));
  const total = buckets.reduce((n, b) => n + b.success, 0);
  const failed = buckets.reduce((n, b) => n + b.failed, 0);
  const w = 12;
  const h = 80;
  const label = `${title}: ${total} succeeded and ${failed} failed in the last ${buckets.length} minutes`;
  return (
    <figure class="chart">
      <svg role="img" aria-label={label} viewBox={`0 0 ${buckets.length * w} ${h}`} preserveAspectRatio="none">
        {buckets.map((b, i) => {
          const ok = (b.success / max) * h;
          const bad = (b.failed / max) * h;
          return (
            <g key={b.at}>
              <title>{`${new Date(b.at).toLocaleTimeString()}: ${b.success} ok, ${b.failed} failed, ${b.meanMs} ms mean`}</title>
              <rect class="ok" x={i * w + 1} y={h - ok} width={w - 2} height={ok} />
              <rect class="bad" x={i * w + 1} y={h - ok - bad} width={w - 2} height={bad} />
            </g>
          );
        })}
      </svg>
      <figcaption>{label}</figcaption>
    </figure>
  );
}
