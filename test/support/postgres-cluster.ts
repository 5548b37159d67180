// A throwaway PostgreSQL cluster from Debian's packages (installed when missing): a temporary
// directory, a free loopback port, trust authentication. Used by the tests (postgres.ts) and the
// benchmark; no node:test here.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { ensureDebianPackages, freePort } from "./debian-packages.js";

/** The newest server binaries Debian installed (/usr/lib/postgresql/<major>/bin). */
function serverBinDir(): string | undefined {
  const base = "/usr/lib/postgresql";
  if (!existsSync(base)) return undefined;
  const majors = readdirSync(base)
    .filter((v) => existsSync(join(base, v, "bin", "initdb")))
    .sort((a, b) => Number(b) - Number(a));
  return majors[0] === undefined ? undefined : join(base, majors[0], "bin");
}

/** PostgreSQL refuses to run as root: as root the cluster runs as the package's `postgres` user. */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8" }).trim());
  return { uid: id("-u"), gid: id("-g") };
}

export interface Cluster {
  /** URL of the cluster's maintenance database. */
  adminUrl: string;
  stop(): Promise<void>;
}

/** `durable: false` (the tests) turns fsync off; the benchmark keeps PostgreSQL's defaults. */
export async function startCluster(options: { durable?: boolean } = {}): Promise<Cluster> {
  ensureDebianPackages("PostgreSQL", () => serverBinDir() !== undefined, ["postgresql"]);
  const bin = serverBinDir() as string;
  const user = runAs();
  const dir = mkdtempSync(join(tmpdir(), "provisio-pg-"));
  if (user) chownSync(dir, user.uid, user.gid);
  const data = join(dir, "data");
  execFileSync(join(bin, "initdb"), ["-D", data, "-U", "provisio", "--auth=trust", "-E", "UTF8", "--no-sync"], {
    stdio: "ignore",
    ...(user ?? {}),
  });
  const port = await freePort();
  // Test data is thrown away: durability off for speed (the database process itself is never killed).
  const child: ChildProcess = spawn(
    join(bin, "postgres"),
    [
      "-D",
      data,
      "-p",
      String(port),
      "-h",
      "127.0.0.1",
      "-k",
      dir,
      "-c",
      "max_connections=200",
      ...(options.durable ? [] : ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]),
    ],
    { stdio: "ignore", ...(user ?? {}) },
  );
  const adminUrl = `postgres://provisio@127.0.0.1:${port}/postgres`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`postgres exited with ${child.exitCode}`);
    const c = new pg.Client({ connectionString: adminUrl });
    try {
      await c.connect();
      await c.end();
      break;
    } catch (e) {
      await c.end().catch(() => undefined);
      if (Date.now() > deadline) throw new Error(`PostgreSQL did not start: ${String(e)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    adminUrl,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        // SIGINT: fast shutdown (disconnects clients, no checkpoint wait beyond the minimum).
        child.kill("SIGINT");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
