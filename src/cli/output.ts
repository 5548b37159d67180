// How CLI verbs print what the server answered: `--output json|table|yaml` (`-o`), JSON by
// default as az does. A table shows an object's or each list item's scalar fields, one column
// each, headed like az's (the key with a capital first letter); nested objects are left to
// json and yaml.
import { stringify } from "yaml";

export const OUTPUT_FORMATS = ["json", "table", "yaml"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export function outputFormat(text: string | undefined): OutputFormat {
  const f = (text ?? "json").toLowerCase();
  if ((OUTPUT_FORMATS as readonly string[]).includes(f)) return f as OutputFormat;
  throw new Error(`--output must be json, table or yaml, not '${text}'.`);
}

const isScalar = (v: unknown): v is string | number | boolean | null =>
  v === null || typeof v === "string" || typeof v === "number" || typeof v === "boolean";

const header = (key: string): string => key.charAt(0).toUpperCase() + key.slice(1);

/** Rows of a table: a list's items, or the one object; anything else is a one-cell table. */
export function renderTable(value: unknown): string {
  if (value === undefined || value === null) return "";
  const items = Array.isArray(value) ? value : [value];
  if (items.length === 0) return "";
  if (!items.every((i) => typeof i === "object" && i !== null && !Array.isArray(i))) {
    return `${items.map((i) => (isScalar(i) ? String(i) : JSON.stringify(i))).join("\n")}\n`;
  }
  const rows = items as Record<string, unknown>[];
  const columns: string[] = [];
  for (const row of rows) {
    for (const [k, v] of Object.entries(row)) if (isScalar(v) && !columns.includes(k)) columns.push(k);
  }
  if (columns.length === 0) return "";
  const cells = rows.map((row) => columns.map((c) => (isScalar(row[c]) ? String(row[c] ?? "") : "")));
  const widths = columns.map((c, i) => Math.max(header(c).length, ...cells.map((r) => (r[i] ?? "").length)));
  const line = (parts: string[]): string =>
    parts
      .map((p, i) => p.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  return [line(columns.map(header)), line(widths.map((w) => "-".repeat(w))), ...cells.map((r) => line(r)), ""].join(
    "\n",
  );
}

export function render(value: unknown, format: OutputFormat): string {
  if (value === undefined) return "";
  if (format === "table") return renderTable(value);
  if (format === "yaml") return stringify(value, { lineWidth: 0 });
  return `${JSON.stringify(value, null, 2)}\n`;
}
