// Caps on open connections (issue "Reliability under faults" 3): each listener takes at most
// `max` at once and at most `maxPerAddress` from one source address, counted from TCP accept
// (before TLS), so a flood of idle sockets cannot take the file descriptors every other device
// needs. Over the per-address cap a new socket is closed at once. At the listener's cap a
// newcomer is not simply refused: the oldest socket that has not yet done anything (no finished
// TLS handshake; on HTTPS, no request) makes room for it, so devices that get on with it still get
// through a flood of idle ones; only when every socket is at work is the newcomer refused.
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
  /** Sockets not at work yet, oldest first (a Map keeps insertion order). */
  const idle = new Map<string, Socket>();
  const counts = { open: 0, shed: 0 };

  server.prependListener("connection", (socket: Socket) => {
    const address = socket.remoteAddress ?? "";
    if ((perAddress.get(address) ?? 0) >= limits.maxPerAddress) {
      counts.shed++;
      socket.destroy();
      return;
    }
    if (counts.open >= limits.max) {
      const oldest = idle.values().next().value;
      counts.shed++;
      if (!oldest) {
        socket.destroy();
        return;
      }
      // Its close handler (below) gives back its place.
      oldest.destroy();
    }
    const key = keyOf(socket);
    counts.open++;
    perAddress.set(address, (perAddress.get(address) ?? 0) + 1);
    idle.set(key, socket);
    socket.once("close", () => {
      counts.open--;
      idle.delete(key);
      const left = (perAddress.get(address) ?? 1) - 1;
      if (left <= 0) perAddress.delete(address);
      else perAddress.set(address, left);
    });
  });
  // The TLS socket (or the request's) shares the raw socket's remote address and port.
  for (const event of working) {
    server.on(event, (s: { remoteAddress?: string; remotePort?: number; socket?: Socket }) => {
      idle.delete(keyOf(s.socket ?? s));
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
