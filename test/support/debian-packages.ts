// What the tests need beyond npm comes from Debian's packages, installed here when the machine
// lacks them (the README's two commands stay the whole setup).
import { execFileSync } from "node:child_process";
import net from "node:net";

/** Runs `present()` until it is true, installing `packages` with apt-get when it is not. */
export function ensureDebianPackages(what: string, present: () => boolean, packages: string[]): void {
  if (present()) return;
  const apt = (args: string[]) =>
    execFileSync("apt-get", args, { stdio: "ignore", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
  // Test files run in parallel: another one may hold dpkg's lock while it installs the same package.
  const deadline = Date.now() + 300_000;
  for (let attempt = 0; !present(); attempt++) {
    if (Date.now() > deadline) throw new Error(`${what} could not be installed from Debian's packages`);
    try {
      if (attempt === 1) apt(["update"]);
      apt(["install", "-y", "--no-install-recommends", ...packages]);
    } catch {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2_000);
    }
  }
}

/** A loopback port nothing listens on right now. */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
