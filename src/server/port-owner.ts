// Who holds a TCP port, so that "address already in use" can name the process (Linux: the
// listening sockets of /proc/net/tcp{,6} and the socket inodes in /proc/{pid}/fd). Best effort:
// another user's processes are not readable, and then only the port is named.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

/** Inodes of the sockets listening (state 0A) on `port`, from the text of /proc/net/tcp or tcp6. Pure. */
export function listeningInodes(procNetTcp: string, port: number): string[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  const inodes: string[] = [];
  for (const line of procNetTcp.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    const local = f[1];
    if (!local || f[3] !== "0A") continue;
    if (local.slice(local.lastIndexOf(":") + 1) === hexPort && f[9]) inodes.push(f[9]);
  }
  return inodes;
}

export interface PortOwner {
  pid: number;
  /** Its command line, shortened. */
  command: string;
}

const read = (file: string): string => {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
};

/** The process listening on `port`, when this process may see it. */
export function portOwner(port: number): PortOwner | undefined {
  const inodes = new Set([
    ...listeningInodes(read("/proc/net/tcp"), port),
    ...listeningInodes(read("/proc/net/tcp6"), port),
  ]);
  if (inodes.size === 0) return undefined;
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((d) => /^\d+$/.test(d));
  } catch {
    return undefined;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode && inodes.has(inode)) {
        const command = read(`/proc/${pid}/cmdline`).split("\0").filter(Boolean).join(" ");
        return { pid: Number(pid), command: command.length > 80 ? `${command.slice(0, 77)}...` : command };
      }
    }
  }
  return undefined;
}
