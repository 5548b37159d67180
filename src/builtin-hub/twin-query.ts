// The twin query subset the built-in hub answers (iothub-api.md §5, §9.7):
//   SELECT * | SELECT path[, path]... FROM devices
//   [WHERE cond [AND cond]...]   cond: path = literal | ARRAY_CONTAINS(path, literal)
// Literals: 'single-quoted strings', numbers, true, false, null. Anything else is refused, never
// half-understood. `ARRAY_CONTAINS(parentScopes, '…')` is how `az iot hub device-identity
// children list` finds an edge device's children.
import { ProvisioError } from "../domain/errors.js";

type Literal = string | number | boolean | null;

export type Condition =
  | { kind: "equals"; path: string[]; value: Literal }
  | { kind: "arrayContains"; path: string[]; value: Literal };

export interface TwinQuery {
  /** Undefined for `SELECT *`: whole twins. */
  select?: string[][];
  conditions: Condition[];
}

const QUERY = /^\s*select\s+(.+?)\s+from\s+devices\s*(?:where\s+(.+?))?\s*$/is;
const PATH = "[A-Za-z0-9_$.-]+";
const LITERAL = "'(?:[^']|'')*'|-?\\d+(?:\\.\\d+)?|true|false|null";
const EQUALS = new RegExp(`^\\s*(${PATH})\\s*=\\s*(${LITERAL})\\s*$`, "i");
const ARRAY_CONTAINS = new RegExp(`^\\s*array_contains\\s*\\(\\s*(${PATH})\\s*,\\s*(${LITERAL})\\s*\\)\\s*$`, "i");
const FIELD = new RegExp(`^\\s*(${PATH})\\s*$`);

const invalid = (detail: string): ProvisioError => new ProvisioError("hubArgumentInvalid", { detail });

function literal(raw: string): Literal {
  const lower = raw.toLowerCase();
  if (raw.startsWith("'")) return raw.slice(1, -1).replaceAll("''", "'");
  if (lower === "true") return true;
  if (lower === "false") return false;
  if (lower === "null") return null;
  return Number(raw);
}

function condition(part: string): Condition {
  const eq = EQUALS.exec(part);
  if (eq?.[1] && eq[2]) return { kind: "equals", path: eq[1].split("."), value: literal(eq[2]) };
  const contains = ARRAY_CONTAINS.exec(part);
  if (contains?.[1] && contains[2]) {
    return { kind: "arrayContains", path: contains[1].split("."), value: literal(contains[2]) };
  }
  throw invalid(`Unsupported condition '${part.trim()}': use path = value or ARRAY_CONTAINS(path, value).`);
}

export function parseTwinQuery(text: string): TwinQuery {
  const m = QUERY.exec(text);
  if (!m?.[1]) {
    throw invalid(
      `Only "SELECT * | SELECT path, ... FROM devices [WHERE path = value | ARRAY_CONTAINS(path, value) [AND ...]]" is supported, not '${text}'.`,
    );
  }
  const what = m[1].trim();
  let select: string[][] | undefined;
  if (what !== "*") {
    select = what.split(",").map((field) => {
      const f = FIELD.exec(field);
      if (!f?.[1]) throw invalid(`Unsupported selection '${field.trim()}': name properties, or use *.`);
      return f[1].split(".");
    });
  }
  const where = m[2];
  const conditions = where ? where.split(/\s+and\s+/i).map(condition) : [];
  return select ? { select, conditions } : { conditions };
}

function at(twin: Record<string, unknown>, path: string[]): unknown {
  let node: unknown = twin;
  for (const key of path) {
    if (typeof node !== "object" || node === null) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

export function matchesQuery(q: TwinQuery, twin: Record<string, unknown>): boolean {
  return q.conditions.every((c) => {
    const node = at(twin, c.path);
    if (c.kind === "arrayContains") return Array.isArray(node) && node.includes(c.value);
    return node === c.value || (c.value === null && node === undefined);
  });
}

/** A matching twin as the query returns it: whole, or the selected properties under their last names. */
export function projectTwin(q: TwinQuery, twin: Record<string, unknown>): Record<string, unknown> {
  if (!q.select) return twin;
  const out: Record<string, unknown> = {};
  for (const path of q.select) {
    const value = at(twin, path);
    if (value !== undefined) out[path[path.length - 1] as string] = value;
  }
  return out;
}
