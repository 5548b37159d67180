// An online backup of a SQLite data directory: SQLite's backup API copies the database page by
// page while a server keeps serving (each step sees one consistent version; pages a writer
// changes meanwhile are copied again), then the development CA beside it. The master key is left
// out on purpose: it must be kept apart from the backups it decrypts.
import { copyFileSync, existsSync, mkdirSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import Database from "better-sqlite3";

export interface BackupReport {
  to: string;
  databasePages: number;
  files: string[];
}

export async function backupDataDir(dataDir: string, to: string): Promise<BackupReport> {
  const source = join(resolve(dataDir), "provisio.db");
  if (!existsSync(source)) throw new Error(`${resolve(dataDir)} has no provisio.db: nothing to back up.`);
  const target = resolve(to);
  if (existsSync(target) && readdirSync(target).length > 0) {
    throw new Error(`${target} is not empty: back up into a new directory.`);
  }
  mkdirSync(join(target, "tls"), { recursive: true, mode: 0o700 });
  // Read-only, and no busy wait: the backup API retries pages a writer holds.
  const db = new Database(source, { readonly: true, fileMustExist: true });
  let pages = 0;
  try {
    const meta = await db.backup(join(target, "provisio.db"));
    pages = meta.totalPages;
  } finally {
    db.close();
  }
  const files = ["provisio.db"];
  for (const name of ["ca.pem", "ca.key"]) {
    const from = join(resolve(dataDir), "tls", name);
    if (existsSync(from)) {
      copyFileSync(from, join(target, "tls", name));
      files.push(`tls/${name}`);
    }
  }
  return { to: target, databasePages: pages, files };
}
