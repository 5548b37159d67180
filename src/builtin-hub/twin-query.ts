// The twin query language of the built-in hub (iothub-api.md §5, §9.7; IoT Hub's query
// language for device twins), as far as fleets use it:
//   SELECT * | SELECT COUNT() [AS name] | SELECT path[, path]... FROM devices [WHERE condition]
//   condition: condition AND|OR condition | NOT condition | ( condition )
//            | operand =|!=|<>|<|>|<=|>= operand | path IN|NIN [literal, ...]
//            | ARRAY_CONTAINS(path, literal) | IS_DEFINED(path) | IS_NULL(path)
//            | STARTSWITH(path, 'text') | ENDSWITH(path, 'text')
// Literals: 'single-quoted' or "double-quoted" strings, numbers, true, false, null. Anything else
// is refused with ArgumentInvalid, never half-understood. Pure.
import { ProvisioError } from "../domain/errors.js";

type Literal = string | number | boolean | null;

export type Operand = { kind: "path"; path: string[] } | { kind: "literal"; value: Literal };

export type Condition =
  | { kind: "and" | "or"; left: Condition; right: Condition }
  | { kind: "not"; inner: Condition }
  | { kind: "compare"; op: "=" | "!=" | "<" | ">" | "<=" | ">="; left: Operand; right: Operand }
  | { kind: "in"; path: string[]; values: Literal[]; negated: boolean }
  | {
      kind: "function";
      name: "array_contains" | "is_defined" | "is_null" | "startswith" | "endswith";
      path: string[];
      value?: Literal;
    };

export interface TwinQuery {
  /** `FROM devices` (default) or `FROM devices.modules`. */
  from?: "devices" | "modules";
  /** Undefined for `SELECT *`: whole twins. */
  select?: string[][];
  /** `SELECT COUNT() [AS name]`: one row with the count under this name. */
  count?: string;
  /** Undefined: every twin. */
  where?: Condition;
}

const invalid = (detail: string): ProvisioError => new ProvisioError("hubArgumentInvalid", { detail });

type Token =
  | { t: "word"; v: string }
  | { t: "string"; v: string }
  | { t: "number"; v: number }
  | { t: "punct"; v: string };

const TOKEN =
  /\s*(?:('(?:[^']|'')*')|("(?:[^"]|"")*")|(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)|(<=|>=|<>|!=|[=<>(),*[\]])|([A-Za-z_$][A-Za-z0-9_$.-]*))/y;

export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  TOKEN.lastIndex = 0;
  let at = 0;
  while (at < text.length) {
    if (/^\s*$/.test(text.slice(at))) break;
    TOKEN.lastIndex = at;
    const m = TOKEN.exec(text);
    if (!m) throw invalid(`Cannot read the query at '${text.slice(at).trim().slice(0, 30)}'.`);
    at = TOKEN.lastIndex;
    if (m[1] !== undefined) tokens.push({ t: "string", v: m[1].slice(1, -1).replaceAll("''", "'") });
    else if (m[2] !== undefined) tokens.push({ t: "string", v: m[2].slice(1, -1).replaceAll('""', '"') });
    else if (m[3] !== undefined) tokens.push({ t: "number", v: Number(m[3]) });
    else if (m[4] !== undefined) tokens.push({ t: "punct", v: m[4] });
    else if (m[5] !== undefined) tokens.push({ t: "word", v: m[5] });
  }
  return tokens;
}

const FUNCTIONS = ["array_contains", "is_defined", "is_null", "startswith", "endswith"];

class Parser {
  #i = 0;
  constructor(private readonly tokens: Token[]) {}

  peek(): Token | undefined {
    return this.tokens[this.#i];
  }
  /** The token `ahead` places after the next one. */
  peekAt(ahead: number): Token | undefined {
    return this.tokens[this.#i + ahead];
  }
  next(): Token | undefined {
    return this.tokens[this.#i++];
  }
  done(): boolean {
    return this.#i >= this.tokens.length;
  }
  isWord(word: string): boolean {
    const t = this.peek();
    return t?.t === "word" && t.v.toLowerCase() === word;
  }
  isPunct(p: string): boolean {
    const t = this.peek();
    return t?.t === "punct" && t.v === p;
  }
  expectWord(word: string): void {
    if (!this.isWord(word)) throw invalid(`Expected ${word.toUpperCase()} ${this.where()}.`);
    this.#i++;
  }
  expectPunct(p: string): void {
    if (!this.isPunct(p)) throw invalid(`Expected '${p}' ${this.where()}.`);
    this.#i++;
  }
  where(): string {
    const t = this.peek();
    return t ? `at '${String(t.v)}'` : "at the end of the query";
  }
  path(): string[] {
    const t = this.next();
    if (t?.t !== "word") throw invalid(`Expected a property path ${t ? `at '${String(t.v)}'` : "at the end"}.`);
    return t.v.split(".");
  }
  literal(): Literal {
    const t = this.next();
    if (t?.t === "string" || t?.t === "number") return t.v;
    if (t?.t === "word" && ["true", "false", "null"].includes(t.v.toLowerCase())) {
      return t.v.toLowerCase() === "null" ? null : t.v.toLowerCase() === "true";
    }
    throw invalid(
      `Expected a value ('text', a number, true, false or null) ${t ? `at '${String(t.v)}'` : "at the end"}.`,
    );
  }
  operand(): Operand {
    const t = this.peek();
    const keyword = t?.t === "word" && ["true", "false", "null"].includes(t.v.toLowerCase());
    return t?.t === "word" && !keyword
      ? { kind: "path", path: this.path() }
      : { kind: "literal", value: this.literal() };
  }

  condition(): Condition {
    let left = this.conjunction();
    while (this.isWord("or")) {
      this.next();
      left = { kind: "or", left, right: this.conjunction() };
    }
    return left;
  }
  conjunction(): Condition {
    let left = this.negation();
    while (this.isWord("and")) {
      this.next();
      left = { kind: "and", left, right: this.negation() };
    }
    return left;
  }
  negation(): Condition {
    if (this.isWord("not")) {
      this.next();
      return { kind: "not", inner: this.negation() };
    }
    return this.primary();
  }
  primary(): Condition {
    if (this.isPunct("(")) {
      this.next();
      const inner = this.condition();
      this.expectPunct(")");
      return inner;
    }
    const t = this.peek();
    const fn = t?.t === "word" ? t.v.toLowerCase() : "";
    if (FUNCTIONS.includes(fn) && this.peekAt(1)?.v === "(") {
      this.next();
      this.expectPunct("(");
      const path = this.path();
      let value: Literal | undefined;
      if (fn === "array_contains" || fn === "startswith" || fn === "endswith") {
        this.expectPunct(",");
        value = this.literal();
        if (fn !== "array_contains" && typeof value !== "string")
          throw invalid(`${fn.toUpperCase()} takes a 'text' value.`);
      }
      this.expectPunct(")");
      return { kind: "function", name: fn as "array_contains", path, ...(value !== undefined ? { value } : {}) };
    }
    const left = this.operand();
    if (left.kind === "path" && (this.isWord("in") || this.isWord("nin"))) {
      const negated = this.isWord("nin");
      this.next();
      this.expectPunct("[");
      const values: Literal[] = [];
      if (!this.isPunct("]")) {
        values.push(this.literal());
        while (this.isPunct(",")) {
          this.next();
          values.push(this.literal());
        }
      }
      this.expectPunct("]");
      return { kind: "in", path: left.path, values, negated };
    }
    const op = this.next();
    if (op?.t !== "punct" || !["=", "!=", "<>", "<", ">", "<=", ">="].includes(op.v)) {
      throw invalid(`Expected a comparison (=, !=, <, >, <=, >=, IN) ${op ? `at '${String(op.v)}'` : "at the end"}.`);
    }
    const normalized = (op.v === "<>" ? "!=" : op.v) as "=";
    return { kind: "compare", op: normalized, left, right: this.operand() };
  }
}

export function parseTwinQuery(text: string): TwinQuery {
  const p = new Parser(tokenize(text));
  const usage =
    "Use SELECT * | SELECT COUNT() | SELECT path, ... FROM devices [WHERE condition] (conditions: =, !=, <, >, <=, >=, IN, NIN, AND, OR, NOT, ARRAY_CONTAINS, IS_DEFINED, IS_NULL, STARTSWITH, ENDSWITH)";
  if (!p.isWord("select")) throw invalid(`${usage}; not '${text}'.`);
  p.next();
  const query: TwinQuery = {};
  if (p.isPunct("*")) {
    p.next();
  } else if (p.isWord("count") && p.peekAt(1)?.v === "(") {
    p.next();
    p.expectPunct("(");
    p.expectPunct(")");
    query.count = "numberOfDevices";
    if (p.isWord("as")) {
      p.next();
      query.count = p.path().join(".");
    }
  } else {
    const select = [p.path()];
    while (p.isPunct(",")) {
      p.next();
      select.push(p.path());
    }
    query.select = select;
  }
  p.expectWord("from");
  const from = p.next();
  const source = from?.t === "word" ? from.v.toLowerCase() : "";
  if (source !== "devices" && source !== "devices.modules") {
    throw invalid(
      `Only FROM devices and FROM devices.modules are supported${from ? `, not '${String(from.v)}'` : ""}. ${usage}.`,
    );
  }
  if (source === "devices.modules") query.from = "modules";
  if (p.isWord("where")) {
    p.next();
    query.where = p.condition();
  }
  if (!p.done()) throw invalid(`Unexpected ${p.where()}: ${usage}.`);
  return query;
}

function at(twin: Record<string, unknown>, path: string[]): unknown {
  let node: unknown = twin;
  for (const key of path) {
    if (typeof node !== "object" || node === null) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

const operandValue = (o: Operand, twin: Record<string, unknown>): unknown =>
  o.kind === "path" ? at(twin, o.path) : o.value;

/** IoT Hub compares values of one type only; anything else (or an absent property) is false. */
function compare(op: "=" | "!=" | "<" | ">" | "<=" | ">=", a: unknown, b: unknown): boolean {
  if (op === "=") return a === b || (b === null && a === undefined) || (a === null && b === undefined);
  if (a === undefined || b === undefined) return false;
  if (op === "!=") return a !== b;
  const comparable =
    (typeof a === "number" && typeof b === "number") || (typeof a === "string" && typeof b === "string");
  if (!comparable) return false;
  const x = a as number | string;
  const y = b as number | string;
  return op === "<" ? x < y : op === ">" ? x > y : op === "<=" ? x <= y : x >= y;
}

export function evaluate(c: Condition, twin: Record<string, unknown>): boolean {
  switch (c.kind) {
    case "and":
      return evaluate(c.left, twin) && evaluate(c.right, twin);
    case "or":
      return evaluate(c.left, twin) || evaluate(c.right, twin);
    case "not":
      return !evaluate(c.inner, twin);
    case "compare":
      return compare(c.op, operandValue(c.left, twin), operandValue(c.right, twin));
    case "in": {
      const v = at(twin, c.path);
      if (v === undefined) return false;
      return c.values.includes(v as Literal) !== c.negated;
    }
    case "function": {
      const v = at(twin, c.path);
      if (c.name === "is_defined") return v !== undefined;
      if (c.name === "is_null") return v === null;
      if (c.name === "array_contains") return Array.isArray(v) && v.includes(c.value);
      if (typeof v !== "string") return false;
      return c.name === "startswith" ? v.startsWith(String(c.value)) : v.endsWith(String(c.value));
    }
  }
}

export function matchesQuery(q: TwinQuery, twin: Record<string, unknown>): boolean {
  return q.where === undefined || evaluate(q.where, twin);
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
