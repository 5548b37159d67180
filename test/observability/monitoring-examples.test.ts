// The Grafana dashboard and the Prometheus alert rules in examples/monitoring use only metrics
// Provisio exports: a renamed metric fails here, not on an operator's wall.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { ProvisioMetrics } from "../../src/observability/metrics.js";

const examples = join(resolve(dirname(fileURLToPath(import.meta.url)), "../../.."), "examples", "monitoring");

/** Every series name a registry exports, histograms with their _bucket, _sum and _count. */
async function exported(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const m of await new ProvisioMetrics().registry.getMetricsAsJSON()) {
    names.add(m.name);
    if (String(m.type) === "histogram") for (const s of ["_bucket", "_sum", "_count"]) names.add(`${m.name}${s}`);
  }
  return names;
}

const used = (text: string): string[] => [...new Set(text.match(/\b(?:dps|provisio|process)_[a-z_]+\b/g) ?? [])];

for (const file of ["grafana-dashboard.json", "prometheus-alerts.yml"]) {
  test(`${file} uses only metrics Provisio exports`, async () => {
    const text = readFileSync(join(examples, file), "utf8");
    if (file.endsWith(".json")) JSON.parse(text);
    const names = await exported();
    const metrics = used(text);
    assert.ok(metrics.length >= 4, "it uses metrics");
    for (const name of metrics) assert.ok(names.has(name), `${file} uses ${name}, which Provisio does not export`);
  });
}
