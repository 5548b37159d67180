// A software TPM for the tests (tpm-attestation.md §11): swtpm from Debian's packages, installed
// here when the machine lacks it, started on free loopback ports with a fresh state directory, and
// reached by the real azure-iot-security-tpm client over TCP (never a TPM of the host).
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tpmSecurity from "azure-iot-security-tpm";
import tssjs from "tss.js";
import { ensureDebianPackages, freePort } from "./debian-packages.js";

const { TpmSecurityClient } = tpmSecurity;

/** True when swtpm runs here; installs Debian's package first when it is missing. */
export function ensureSwtpm(): void {
  const has = () => {
    try {
      execFileSync("swtpm", ["--version"], { stdio: "ignore" });
      return true;
    } catch {
      return false;
    }
  };
  ensureDebianPackages("swtpm", has, ["swtpm", "swtpm-tools"]);
}

/** Resolves once something accepts connections on the port. */
async function listening(port: number, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`swtpm exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, "127.0.0.1");
      c.once("connect", () => {
        c.destroy();
        resolve(true);
      });
      c.once("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("swtpm did not start listening");
}

export interface SoftwareTpm {
  /** A device's security client on this TPM (its EK and SRK are created on first use). */
  securityClient(registrationId?: string): InstanceType<typeof TpmSecurityClient>;
  stop(): Promise<void>;
}

/** swtpm serves one connection at a time: one security client per TPM, closed before the next. */
export async function startSwtpm(): Promise<SoftwareTpm> {
  ensureSwtpm();
  const [port, ctrl] = [await freePort(), await freePort()];
  const state = mkdtempSync(join(tmpdir(), "provisio-swtpm-"));
  const child = spawn(
    "swtpm",
    [
      "socket",
      "--tpm2",
      "--tpmstate",
      `dir=${state}`,
      "--server",
      `type=tcp,port=${port},bindaddr=127.0.0.1`,
      "--ctrl",
      `type=tcp,port=${ctrl},bindaddr=127.0.0.1`,
      // The SDK never sends TPM2_Startup on this path.
      "--flags",
      "not-need-init,startup-clear",
    ],
    { stdio: "ignore" },
  );
  await listening(port, child);
  const tpms: { close(): void }[] = [];
  return {
    securityClient(registrationId) {
      const tpm = new tssjs.Tpm(false);
      // The TCP device, deterministically: the default would try /dev/tpm0 first.
      (tpm as unknown as { device: unknown }).device = new tssjs.TpmTcpDevice("127.0.0.1", port, true);
      tpms.push(tpm);
      return new TpmSecurityClient(registrationId, tpm);
    },
    async stop() {
      for (const tpm of tpms) tpm.close();
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill();
      await exited;
      rmSync(state, { recursive: true, force: true });
    },
  };
}
