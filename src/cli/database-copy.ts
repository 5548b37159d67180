// `provisio database copy`: a SQLite data directory into an empty PostgreSQL database (moving
// from one machine to several nodes; store/copy-to-postgres.ts does the work).
// `provisio database backup`: an online backup of a SQLite data directory (sqlite-backup.ts).
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { loadMasterKey, SecretBox } from "../security/secret-box.js";
import { ensureCaFiles } from "../security/tls-material.js";
import { loadServeConfig } from "../server/config.js";
import { copySqliteToPostgres } from "../store/copy-to-postgres.js";
import { backupDataDir } from "../store/sqlite/sqlite-backup.js";

export function registerDatabaseCommands(program: Command): void {
  const database = program.command("database").description("Work with where Provisio keeps its records");
  database
    .command("copy")
    .description(
      "Copy a SQLite data directory (enrollments, keys, registrations, hubs, CA) into an empty PostgreSQL database",
    )
    .option("--data-dir <dir>", "the data directory to copy (env PROVISIO_DATA_DIR, default ./provisio-data)")
    .option("--database-url <url>", "the PostgreSQL database to copy into (env PROVISIO_DATABASE_URL)")
    .action(async (opts: Record<string, string>) => {
      const config = loadServeConfig(opts);
      if (!config.databaseUrl) throw new Error("Give the database to copy into: --database-url postgres://…");
      const dir = resolve(config.dataDir);
      const file = join(dir, "provisio.db");
      if (!existsSync(file)) throw new Error(`${dir} has no provisio.db: nothing to copy.`);
      const keyFile = join(dir, "master.key");
      if (!config.masterKey && !existsSync(keyFile)) {
        throw new Error(`${dir} has no master.key: set PROVISIO_MASTER_KEY to the key its secrets were sealed with.`);
      }
      const secrets = new SecretBox(loadMasterKey(dir, config.masterKey));
      const tls = join(dir, "tls");
      const ca = existsSync(join(tls, "ca.pem")) ? await ensureCaFiles(tls) : undefined;
      const counts = await copySqliteToPostgres(file, config.databaseUrl, secrets, ca);
      process.stdout.write(`${JSON.stringify({ copied: counts, developmentCa: ca !== undefined })}\n`);
      process.stderr.write(
        `Copied. Start every node with --database-url and PROVISIO_MASTER_KEY set to ${
          config.masterKey ? "the same PROVISIO_MASTER_KEY" : `the contents of ${keyFile}`
        }.\n`,
      );
    });
  database
    .command("backup")
    .description(
      "Back up a SQLite data directory while the server runs: the database and the development CA into a new directory",
    )
    .option("--data-dir <dir>", "the data directory (env PROVISIO_DATA_DIR, default ./provisio-data)")
    .requiredOption("--to <dir>", "a new, empty directory for the backup")
    .action(async (opts: Record<string, string>) => {
      const config = loadServeConfig({ ...(opts.dataDir ? { dataDir: opts.dataDir } : {}) });
      const report = await backupDataDir(config.dataDir, opts.to as string);
      process.stdout.write(`${JSON.stringify(report)}\n`);
      process.stderr.write(
        "Backed up. The master key is not in the backup: keep DIR/master.key (or PROVISIO_MASTER_KEY) safe apart from it.\n",
      );
    });
}
