// Summarise a V8 .cpuprofile (node --cpu-prof): the hottest functions by self time, and the
// project functions with the most inclusive time, as markdown.
import { readFileSync } from "node:fs";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** The file, shortened: `dist/src/...` for the project, `npm:pkg/...` for packages, `node:...` as is. */
function fileOf(url: string, root: string): string {
  const npm = url.lastIndexOf("/node_modules/");
  if (npm >= 0) return `npm:${url.slice(npm + "/node_modules/".length)}`;
  return url.replace(`file://${root}/`, "");
}

/** `file:line function`; native frames (no url) by name alone. */
function label(frame: CallFrame, root: string): string {
  const fn = frame.functionName || "(anonymous)";
  return frame.url ? `${fileOf(frame.url, root)}:${frame.lineNumber + 1} ${fn}` : fn;
}

const isProject = (frame: CallFrame, root: string): boolean =>
  frame.url.startsWith(`file://${root}/dist/src/`) || frame.url.includes("/node_modules/");

/** A coarse bucket for self time: what kind of work it is. */
function areaOf(frame: CallFrame, root: string): string {
  const url = frame.url;
  if (!url) {
    if (frame.functionName === "(garbage collector)") return "garbage collector";
    if (frame.functionName === "(program)") return "(program): native, unattributed";
    return "native builtins (writev, shutdown, close, microtasks, …)";
  }
  const file = fileOf(url, root);
  if (file.startsWith("npm:better-sqlite3/") || file.startsWith("dist/src/store/sqlite/"))
    return "SQLite (better-sqlite3 + dist/src/store/sqlite)";
  if (file.startsWith("node:internal/crypto/") || file === "node:crypto") return "node crypto (HMAC, hashes, random)";
  if (/^node:(_tls|tls|internal\/tls)/.test(file)) return "node TLS";
  if (/^node:(_http|http|https|internal\/http)/.test(file)) return "node HTTP";
  if (/^node:(net|internal\/net|internal\/stream_base|internal\/streams|stream)/.test(file))
    return "node net + streams";
  if (file.startsWith("node:")) return "node other (events, timers, buffers, …)";
  if (file.startsWith("npm:")) return `npm:${file.slice(4).split("/")[0]}`;
  const m = /^dist\/src\/([^/]+)/.exec(file);
  return m ? `provisio src/${m[1]}` : file;
}

export function summariseProfile(file: string, root: string, title: string, top = 20): string {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const self = new Map<string, number>();
  const areas = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  let idle = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    const node = byId.get(id);
    if (!node) return;
    if (node.callFrame.functionName === "(idle)") {
      idle += dt;
      return;
    }
    total += dt;
    const key = label(node.callFrame, root);
    self.set(key, (self.get(key) ?? 0) + dt);
    const area = areaOf(node.callFrame, root);
    areas.set(area, (areas.get(area) ?? 0) + dt);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)?.callFrame;
      if (!frame || !isProject(frame, root)) continue;
      const k = label(frame, root);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + dt);
    }
  });
  const pct = (us: number): string => `${((us / total) * 100).toFixed(1)} %`;
  const rows = (m: Map<string, number>, limit = top) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, limit)
      .map(([k, us]) => `| ${pct(us)} | ${(us / 1000).toFixed(0)} | \`${k}\` |`);
  return [
    `### ${title}`,
    "",
    `Busy ${(total / 1e6).toFixed(1)} s, idle ${(idle / 1e6).toFixed(1)} s; percentages are of busy time. ` +
      "`(program)` is native work V8 cannot attribute to a JS function (TLS handshakes, syscalls). On a loaded " +
      "machine, time the thread spends descheduled lands on the frame it was in, often a syscall such as `writev`.",
    "",
    "Self time by area:",
    "",
    "| self | ms | area |",
    "|---:|---:|---|",
    ...rows(areas, 30),
    "",
    `Top ${top} functions by self time:`,
    "",
    "| self | ms | function |",
    "|---:|---:|---|",
    ...rows(self),
    "",
    `Top ${top} project functions (dist/src and node_modules) by inclusive time (synchronous stacks only: ` +
      "an async function counts until its first await):",
    "",
    "| inclusive | ms | function |",
    "|---:|---:|---|",
    ...rows(inclusive),
  ].join("\n");
}
