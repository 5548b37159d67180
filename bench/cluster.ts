// The `postgres` scenario of `npm run bench`: the same fresh-TLS symmetric-key registrations over
// HTTPS against one node on SQLite, one node on PostgreSQL and two nodes on one PostgreSQL (the
// load split between them), in one run, on a throwaway PostgreSQL with its default durability.
// Besides rates and latencies it reports the database's committed transactions per registration:
// every statement outside an explicit transaction is one, so it counts the round trips.
import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { startCluster } from "../test/support/postgres-cluster.js";
import type { LoadResult } from "./load.js";
import { generatorCpuSeconds, type LoadWorker, processCpuSeconds } from "./load-workers.js";
import { type Measurement, measure } from "./report.js";
import { createEnrollmentGroup, type Provisio, removeDir, startProvisio } from "./servers.js";

export interface ClusterBenchOptions {
  workers: readonly LoadWorker[];
  devices: number;
  concurrency: number;
  maxSeconds: number;
  tag: string;
  log(line: string): void;
}

interface Setup {
  label: string;
  nodes: Provisio[];
  groupKey: string;
  /** Transactions committed in the database so far, when it is PostgreSQL. */
  transactions?: () => Promise<number>;
}

interface Row {
  label: string;
  m: Measurement;
  transactionsPerRegistration?: number;
}

async function load(
  o: ClusterBenchOptions,
  setup: Setup,
  run: string,
  count: number,
  seconds: number,
): Promise<LoadResult[]> {
  const n = o.workers.length;
  const prepared = await Promise.all(
    o.workers.map((w, k) => {
      const node = setup.nodes[k % setup.nodes.length] as Provisio;
      return w.ask({
        type: "prepare",
        port: node.info.ports.https,
        caPem: node.caPem,
        concurrency: Math.floor(o.concurrency / n) + (k < o.concurrency % n ? 1 : 0),
        work: {
          kind: "https",
          spec: {
            idScope: node.info.idScope,
            groupKey: setup.groupKey,
            run,
            indices: Array.from({ length: count }, (_, i) => i).filter((i) => i % n === k),
          },
        },
      });
    }),
  );
  for (const m of prepared) if (m.type !== "ready") throw new Error(`worker: ${JSON.stringify(m)}`);
  const deadline = Date.now() + seconds * 1000;
  const done = await Promise.all(o.workers.map((w) => w.ask({ type: "go", deadline })));
  return done.map((m) => {
    if (m.type !== "done") throw new Error(`worker: ${JSON.stringify(m)}`);
    return m.result;
  });
}

const cpuOf = (nodes: readonly Provisio[]): number | undefined => {
  let sum = 0;
  for (const node of nodes) {
    const s = processCpuSeconds(node.child.pid);
    if (s === undefined) return undefined;
    sum += s;
  }
  return sum;
};

async function measureSetup(o: ClusterBenchOptions, setup: Setup): Promise<Row> {
  await load(o, setup, `${o.tag}-pgw-${setup.nodes.length}-${setup.transactions ? "p" : "s"}`, 1500, 40);
  // Busy backends report their counters at most once a second, idle ones after up to 10 s
  // (PostgreSQL 15's PGSTAT_IDLE_INTERVAL): wait that long around a measurement that counts them.
  const statsSettle = setup.transactions ? 11_000 : 1_500;
  await new Promise((r) => setTimeout(r, statsSettle));
  const tx0 = await setup.transactions?.();
  const cpu0 = cpuOf(setup.nodes);
  const gen0 = generatorCpuSeconds();
  const parts = await load(
    o,
    setup,
    `${o.tag}-pg-${setup.nodes.length}-${setup.transactions ? "p" : "s"}`,
    o.devices,
    o.maxSeconds,
  );
  const cpu1 = cpuOf(setup.nodes);
  const m = measure("provisio", 1, o.devices, parts, {
    ...(cpu0 !== undefined && cpu1 !== undefined ? { server: cpu1 - cpu0 } : {}),
    generator: generatorCpuSeconds() - gen0,
  });
  await new Promise((r) => setTimeout(r, statsSettle));
  const tx1 = await setup.transactions?.();
  o.log(
    `postgres: ${setup.label}: ${m.rate.toFixed(0)} registrations/s, p99 ${m.p99.toFixed(1)} ms, ${m.failed} failed`,
  );
  return {
    label: setup.label,
    m,
    ...(tx0 !== undefined && tx1 !== undefined && m.assigned > 0
      ? { transactionsPerRegistration: (tx1 - tx0) / m.assigned }
      : {}),
  };
}

/** Runs the scenario; resolves to its section of the report (markdown). */
export async function runPostgresScenario(o: ClusterBenchOptions): Promise<string> {
  const cleanups: (() => Promise<unknown>)[] = [];
  try {
    const cluster = await startCluster({ durable: true });
    cleanups.push(() => cluster.stop());
    const admin = new pg.Client({ connectionString: cluster.adminUrl });
    await admin.connect();
    await admin.query("CREATE DATABASE provisio_bench");
    await admin.end();
    const url = new URL(cluster.adminUrl);
    url.pathname = "/provisio_bench";
    const env = { PROVISIO_DATABASE_URL: url.toString(), PROVISIO_MASTER_KEY: randomBytes(32).toString("hex") };
    const dir = () => {
      const d = mkdtempSync(join(tmpdir(), "provisio-bench-pg-"));
      cleanups.push(async () => removeDir(d));
      return d;
    };
    const sqlite = await startProvisio(dir());
    cleanups.push(() => sqlite.stop());
    const [a, b] = [await startProvisio(dir(), [], env), await startProvisio(dir(), [], env)];
    cleanups.push(
      () => a.stop(),
      () => b.stop(),
    );
    const stats = new pg.Client({ connectionString: url.toString() });
    await stats.connect();
    cleanups.push(() => stats.end());
    const transactions = async () => {
      const { rows } = await stats.query<{ n: string }>(
        "SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()",
      );
      return Number(rows[0]?.n ?? 0);
    };
    const pgKey = await createEnrollmentGroup(a, "bench-group");
    const setups: Setup[] = [
      { label: "one node, SQLite", nodes: [sqlite], groupKey: await createEnrollmentGroup(sqlite, "bench-group") },
      { label: "one node, PostgreSQL", nodes: [a], groupKey: pgKey, transactions },
      { label: "two nodes, one PostgreSQL", nodes: [a, b], groupKey: pgKey, transactions },
    ];
    const rows: Row[] = [];
    for (const s of setups) rows.push(await measureSetup(o, s));
    return render(o, rows);
  } finally {
    while (cleanups.length > 0)
      await cleanups
        .pop()?.()
        .catch(() => undefined);
  }
}

function render(o: ClusterBenchOptions, rows: readonly Row[]): string {
  const f = (n: number | undefined, digits = 1) => (n === undefined || Number.isNaN(n) ? "–" : n.toFixed(digits));
  const lines = [
    "## PostgreSQL and several nodes",
    "",
    `${o.devices} symmetric-key group devices over HTTPS, each on a fresh TLS connection, ${o.concurrency} in flight, ` +
      "after 1500 warm-up registrations, against a throwaway PostgreSQL on this machine with its default durability " +
      "(fsync on). With two nodes the generator threads split the devices between them. Server CPU is the sum over the " +
      "provisio nodes (PostgreSQL's own processes not included). Transactions per registration are PostgreSQL's " +
      "committed transactions during the measurement divided by registrations: each statement is its own " +
      "transaction, so this is the round trips a registration costs.",
    "",
    "| setup | registrations/s | p50 ms | p99 ms | failed | provisio CPU ms/registration | transactions/registration |",
    "|---|---|---|---|---|---|---|",
    ...rows.map(
      ({ label, m, transactionsPerRegistration }) =>
        `| ${label} | ${f(m.rate, 0)} | ${f(m.p50)} | ${f(m.p99)} | ${m.failed} | ` +
        `${m.serverCpuSeconds !== undefined && m.assigned > 0 ? f((m.serverCpuSeconds * 1000) / m.assigned, 2) : "–"} | ` +
        `${f(transactionsPerRegistration, 2)} |`,
    ),
    "",
    "On two shared cores the nodes, PostgreSQL and the load generator compete for the same CPU, so two nodes " +
      "cannot be faster than one here; on machines with cores to spare per node the rate grows with the nodes " +
      "until PostgreSQL's commits (one per registration) are the limit.",
    "",
  ];
  return lines.join("\n");
}
