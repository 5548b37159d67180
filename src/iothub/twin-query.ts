// The twin query subset the built-in hub answers (iothub-api.md §5, §9.7):
// `SELECT * FROM devices [WHERE <path> = <literal> [AND <path> = <literal>]...]`.
// Literals: 'single-quoted strings', numbers, true, false, null. Anything else is refused.
import { ProvisioError } from "../domain/errors.js";

export interface TwinQuery {
  conditions: { path: string[]; value: string | number | boolean | null }[];
}

const QUERY = /^\s*select\s+\*\s+from\s+devices\s*(?:where\s+(.+?))?\s*$/is;
const CONDITION = /^\s*([A-Za-z0-9_$.-]+)\s*=\s*('(?:[^']|'')*'|-?\d+(?:\.\d+)?|true|false|null)\s*$/i;

export function parseTwinQuery(text: string): TwinQuery {
  const m = QUERY.exec(text);
  if (!m) {
    throw new ProvisioError("hubArgumentInvalid", {
      detail: `Only "SELECT * FROM devices [WHERE path = value [AND ...]]" is supported, not '${text}'.`,
    });
  }
  const where = m[1];
  if (!where) return { conditions: [] };
  const conditions = where.split(/\s+and\s+/i).map((part) => {
    const c = CONDITION.exec(part);
    if (!c?.[1] || !c[2]) {
      throw new ProvisioError("hubArgumentInvalid", {
        detail: `Unsupported condition '${part.trim()}': use path = value.`,
      });
    }
    const raw = c[2];
    const lower = raw.toLowerCase();
    const value = raw.startsWith("'")
      ? raw.slice(1, -1).replaceAll("''", "'")
      : lower === "true"
        ? true
        : lower === "false"
          ? false
          : lower === "null"
            ? null
            : Number(raw);
    return { path: c[1].split("."), value };
  });
  return { conditions };
}

export function matchesQuery(q: TwinQuery, twin: Record<string, unknown>): boolean {
  return q.conditions.every(({ path, value }) => {
    let node: unknown = twin;
    for (const key of path) {
      if (typeof node !== "object" || node === null) return false;
      node = (node as Record<string, unknown>)[key];
    }
    return node === value || (value === null && node === undefined);
  });
}
