// Metrics: device and service operations per minute, failures and mean latency, by protocol,
// from this node's recent diagnostic lines (GET /diagnostics). Prometheus metrics of every
// node are on the metrics port (`provisio serve --metrics-port`), for dashboards.
import { useEffect, useState } from "preact/hooks";
import { can } from "../api.js";
import { BarChart } from "../chart.js";
import { useSession } from "../session.js";
import { type DiagnosticLine, perMinute } from "../time-series.js";
import { ErrorNote, NeedsRight, useAsync } from "../ui.js";

const countBy = (lines: DiagnosticLine[], key: (l: DiagnosticLine) => string): [string, number][] => {
  const m = new Map<string, number>();
  for (const l of lines) m.set(key(l), (m.get(key(l)) ?? 0) + 1);
  return [...m.entries()].sort((a, b) => b[1] - a[1]);
};

export function Metrics() {
  const { api, who } = useSession();
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const t = setInterval(() => setTick((n) => n + 1), 10_000);
    return () => clearInterval(t);
  }, []);
  const lines = useAsync(
    () => (can(who, "RegistrationStatusRead") ? api.get<DiagnosticLine[]>("/diagnostics") : Promise.resolve([])),
    [tick],
  );
  if (!can(who, "RegistrationStatusRead")) {
    return (
      <NeedsRight blade="Metrics">
        Metrics are read from the diagnostic log, which needs RegistrationStatusRead.
      </NeedsRight>
    );
  }
  const all = lines.data ?? [];
  const device = all.filter((l) => l.Category === "DeviceOperations");
  const now = Date.now();
  const deviceBuckets = perMinute(all, "DeviceOperations", 30, now);
  const latency = deviceBuckets.filter((b) => b.success + b.failed > 0);
  return (
    <section>
      <h1>Metrics</h1>
      <p class="muted">This node's last 1,000 operations; refreshed every 10 seconds.</p>
      <ErrorNote error={lines.error} what="Could not read the diagnostic log" />
      <h2>Device operations per minute</h2>
      <BarChart title="Device operations" buckets={deviceBuckets} />
      <h2>Service operations per minute</h2>
      <BarChart title="Service operations" buckets={perMinute(all, "ServiceOperations", 30, now)} />
      <h2>Mean device operation latency</h2>
      <table>
        <caption>Mean latency per minute with operations</caption>
        <thead>
          <tr>
            <th scope="col">Minute</th>
            <th scope="col">Operations</th>
            <th scope="col">Mean (ms)</th>
          </tr>
        </thead>
        <tbody>
          {latency.map((b) => (
            <tr key={b.at}>
              <td>{new Date(b.at).toLocaleTimeString()}</td>
              <td>{b.success + b.failed}</td>
              <td>{b.meanMs}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <div class="columns">
        <table>
          <caption>Device operations by protocol</caption>
          <tbody>
            {countBy(device, (l) => l.properties.protocol ?? "unknown").map(([k, n]) => (
              <tr key={k}>
                <th scope="row">{k}</th>
                <td>{n}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <table>
          <caption>Device operations by result</caption>
          <tbody>
            {countBy(device, (l) => `${l.ResultType} ${l.ResultSignature}`).map(([k, n]) => (
              <tr key={k}>
                <th scope="row">{k}</th>
                <td>{n}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
