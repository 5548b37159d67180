// A real PostgreSQL for the tests: PROVISIO_TEST_DATABASE_URL when set, else a throwaway cluster
// (postgres-cluster.ts), one a test file, stopped after its last test. Every caller gets a
// database of its own in it.
import { randomBytes } from "node:crypto";
import { after } from "node:test";
import pg from "pg";
import { type Cluster, startCluster } from "./postgres-cluster.js";

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
