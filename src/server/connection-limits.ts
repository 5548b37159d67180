// Caps on open connections (issue "Reliability under faults" 3): each listener takes at most
// `max` at once and at most `maxPerAddress` from one source address, counted from TCP accept
// (before TLS), so a flood of idle sockets cannot take the file descriptors every other device
// needs. Over the per-address cap a new socket is closed at once. At the listener's cap a
// newcomer is not simply refused: a socket that has not yet done anything (no finished TLS
// handshake; on HTTPS, no request) makes room for it, the oldest such socket of the address with
// the most connections, so a device handshaking once is not pushed out by a flood from elsewhere;
// only when every socket is at work is the newcomer refused.
import type { Socket } from "node:net";
import type { Server as TlsServer } from "node:tls";

export interface ConnectionLimits {
  max: number;
  maxPerAddress: number;
}

export interface ConnectionCounts {
  /** Open connections now. */
  readonly open: number;
  /** Connections refused or evicted over a cap so far. */
  readonly shed: number;
}

const keyOf = (s: { remoteAddress?: string | undefined; remotePort?: number | undefined }): string =>
  `${s.remoteAddress ?? ""}|${s.remotePort ?? ""}`;

/**
 * Limits `server`'s connections. `working` names the events that show a connection is at work:
 * "secureConnection" (the TLS handshake finished), or "request" and "upgrade" (an HTTPS request or
 * a WebSocket began).
 */
export function limitConnections(
  server: TlsServer,
  limits: ConnectionLimits,
  working: readonly ("secureConnection" | "request" | "upgrade")[],
): ConnectionCounts {
  const perAddress = new Map<string, number>();
  /** Sockets not at work yet, by address, oldest first (a Map keeps insertion order). */
  const idle = new Map<string, Map<string, Socket>>();
  /** The oldest idle socket of the address holding the most connections. */
  const evictable = (): Socket | undefined => {
    let worst: Map<string, Socket> | undefined;
    let most = 0;
    for (const [address, sockets] of idle) {
      const n = perAddress.get(address) ?? 0;
      if (sockets.size > 0 && n > most) {
        most = n;
        worst = sockets;
      }
    }
    return worst?.values().next().value;
  };
  const counts = { open: 0, shed: 0 };

  server.prependListener("connection", (socket: Socket) => {
    const address = socket.remoteAddress ?? "";
    if ((perAddress.get(address) ?? 0) >= limits.maxPerAddress) {
      counts.shed++;
      socket.destroy();
      return;
    }
    if (counts.open >= limits.max) {
      const victim = evictable();
      counts.shed++;
      if (!victim) {
        socket.destroy();
        return;
      }
      // Its close handler (below) gives back its place.
      victim.destroy();
    }
    const key = keyOf(socket);
    counts.open++;
    perAddress.set(address, (perAddress.get(address) ?? 0) + 1);
    let mine = idle.get(address);
    if (!mine) {
      mine = new Map();
      idle.set(address, mine);
    }
    mine.set(key, socket);
    socket.once("close", () => {
      counts.open--;
      const sockets = idle.get(address);
      sockets?.delete(key);
      if (sockets?.size === 0) idle.delete(address);
      const left = (perAddress.get(address) ?? 1) - 1;
      if (left <= 0) perAddress.delete(address);
      else perAddress.set(address, left);
    });
  });
  // The TLS socket (or the request's) shares the raw socket's remote address and port.
  for (const event of working) {
    server.on(event, (s: { remoteAddress?: string; remotePort?: number; socket?: Socket }) => {
      const at = s.socket ?? s;
      idle.get(at.remoteAddress ?? "")?.delete(keyOf(at));
    });
  }
  return counts;
}

/**
 * The connection cap of one listener when none is configured: a share of the process's open-file
 * limit (Linux /proc/self/limits), leaving a reserve for the database, hubs, webhooks and logs.
 */
export function defaultMaxConnections(openFilesLimit: number | undefined, listeners: number): number {
  if (!openFilesLimit || !Number.isFinite(openFilesLimit)) return 10_000;
  const reserve = Math.max(64, Math.floor(openFilesLimit * 0.1));
  return Math.max(16, Math.floor((openFilesLimit - reserve) / Math.max(1, listeners)));
}

/** The soft open-files limit of this process, where Linux tells it. */
export function openFilesLimit(readLimits: () => string): number | undefined {
  try {
    const line = readLimits()
      .split("\n")
      .find((l) => l.startsWith("Max open files"));
    const soft = line?.split(/\s{2,}/)[1];
    return soft === undefined || soft === "unlimited" ? undefined : Number(soft);
  } catch {
    return undefined;
  }
}
