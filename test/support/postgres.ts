// A real PostgreSQL for the tests: PROVISIO_TEST_DATABASE_URL when set, else a throwaway cluster
// from Debian's packages (installed when missing) in a temporary directory on a free loopback
// port, one a test process. Every caller gets a database of its own in it.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
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

interface Cluster {
  /** URL of the cluster's maintenance database. */
  adminUrl: string;
  stop(): Promise<void>;
}

async function startCluster(): Promise<Cluster> {
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
  // Throwaway data: durability settings off for speed (the database process itself is never killed).
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
      "fsync=off",
      "-c",
      "synchronous_commit=off",
      "-c",
      "full_page_writes=off",
      "-c",
      "max_connections=200",
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

let cluster: Promise<Cluster> | undefined;

// The cluster lives as long as the test file: stopped after its last test.
after(async () => {
  const c = cluster;
  cluster = undefined;
  if (c) await (await c).stop();
});

export interface TestDatabase {
  url: string;
  /** Drops the database (the throwaway cluster stops after the file's last test). */
  drop(): Promise<void>;
}

const adminQuery = async (adminUrl: string, sql: string): Promise<void> => {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
};

/** A fresh, empty database. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const given = process.env.PROVISIO_TEST_DATABASE_URL;
  let c: Cluster;
  if (given) {
    c = { adminUrl: given, stop: async () => undefined };
  } else {
    cluster ??= startCluster();
    c = await cluster;
  }
  const name = `provisio_test_${randomBytes(6).toString("hex")}`;
  await adminQuery(c.adminUrl, `CREATE DATABASE ${name} STRATEGY FILE_COPY`);
  const url = new URL(c.adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      await adminQuery(c.adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}
