// Runs a real `provisio serve` child process on a temp data dir with OS-chosen ports, and waits
// for the provisio.json it writes when every listener accepts connections.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { ServeInfo } from "../../src/server.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const BIN = join(root, "bin", "provisio.js");

export interface ProvisioProcess {
  dataDir: string;
  info: ServeInfo;
  ca: Buffer;
  child: ChildProcess;
  /** Everything the process wrote to stderr so far (for failure messages). */
  stderr(): string;
  /** SIGTERM and wait for exit; resolves to the exit code. */
  stop(): Promise<number | null>;
  /** stop() and remove the data dir. */
  dispose(): Promise<void>;
}

/** Every listener on loopback, each on a port the OS picks. */
export const LOOPBACK_ANY_PORTS = [
  "--bind",
  "127.0.0.1",
  "--https-port",
  "0",
  "--mqtt-port",
  "0",
  "--amqp-port",
  "0",
  "--metrics-port",
  "0",
];

export const newDataDir = (): string => mkdtempSync(join(tmpdir(), "provisio-test-"));

export async function startProvisio(
  /** `nofile`: the process's open-files limit (set with the shell's ulimit before it starts). */
  options: { dataDir?: string; args?: string[]; env?: Record<string, string>; nofile?: number } = {},
): Promise<ProvisioProcess> {
  const dataDir = options.dataDir ?? newDataDir();
  const infoFile = join(dataDir, "provisio.json");
  rmSync(infoFile, { force: true });
  const command = options.nofile
    ? ["sh", ["-c", `ulimit -n ${options.nofile} && exec "$0" "$@"`, process.execPath]]
    : [process.execPath, []];
  const child = spawn(
    command[0] as string,
    [...(command[1] as string[]), BIN, "serve", "--data-dir", dataDir, ...LOOPBACK_ANY_PORTS, ...(options.args ?? [])],
    { env: { ...process.env, PROVISIO_LOG_LEVEL: "error", ...options.env }, stdio: ["ignore", "inherit", "pipe"] },
  );
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const deadline = Date.now() + 30_000;
  while (!existsSync(infoFile)) {
    if (child.exitCode !== null) throw new Error(`provisio serve exited with ${child.exitCode}: ${stderr}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`provisio serve did not write provisio.json in time: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  const info = JSON.parse(readFileSync(infoFile, "utf8")) as ServeInfo;
  const stop = async (): Promise<number | null> => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill("SIGTERM");
    const [code] = (await once(child, "exit")) as [number | null];
    return code;
  };
  return {
    dataDir,
    info,
    ca: readFileSync(info.caFile),
    child,
    stderr: () => stderr,
    stop,
    async dispose() {
      await stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
