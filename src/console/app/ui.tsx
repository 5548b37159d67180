// Small building blocks every blade uses: loading and error states that say what happened,
// a table paged on the server, labelled fields.
import { type ComponentChildren, cloneElement, type VNode } from "preact";
import { useCallback, useEffect, useId, useRef, useState } from "preact/hooks";
import { ApiError, type Page } from "./api.js";

export interface Async<T> {
  data: T | undefined;
  error: Error | undefined;
  loading: boolean;
  reload: () => void;
}

/** Runs `load` when `deps` change (and on reload); the latest call wins. */
export function useAsync<T>(load: () => Promise<T>, deps: readonly unknown[]): Async<T> {
  const [state, setState] = useState<{ data?: T; error?: Error; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  const seq = useRef(0);
  useEffect(() => {
    const mine = ++seq.current;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => mine === seq.current && setState({ data, loading: false }),
      (error: Error) => mine === seq.current && setState({ error, loading: false }),
    );
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data: state.data, error: state.error, loading: state.loading, reload };
}

export function ErrorNote({ error, what }: { error: Error | undefined; what?: string }) {
  if (!error) return null;
  const status = error instanceof ApiError ? error.status : undefined;
  const code = error instanceof ApiError && error.errorCode ? ` (error ${error.errorCode})` : "";
  return (
    <div role="alert" class="error">
      <strong>{what ?? "That did not work"}</strong>
      {status ? `: ${status}${code}` : ""}. {error.message}
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p role="status" class="muted">
      Loading {what}…
    </p>
  );
}

/**
 * A labelled control: the label names it and the hint or problem describes it
 * (aria-describedby), so a screen reader reads both and tests find it by its label alone.
 */
export function Field(props: {
  label: string;
  hint?: string | undefined;
  problem?: string | undefined;
  children: VNode<{ id?: string; "aria-describedby"?: string; "aria-invalid"?: boolean }>;
}) {
  const id = useId();
  const note = props.problem ?? props.hint;
  return (
    <div class="field">
      <label for={id} class="label">
        {props.label}
      </label>
      {cloneElement(props.children, {
        id,
        ...(note ? { "aria-describedby": `${id}-note` } : {}),
        ...(props.problem ? { "aria-invalid": true } : {}),
      })}
      {note ? (
        <span id={`${id}-note`} class={props.problem ? "problem" : "hint"} role={props.problem ? "alert" : undefined}>
          {note}
        </span>
      ) : null}
    </div>
  );
}

/** A table paged on the server with DPS continuation tokens: Previous keeps the tokens seen. */
export function PagedTable<T>(props: {
  caption: string;
  columns: string[];
  load: (continuation: string | undefined) => Promise<Page<T>>;
  row: (item: T) => ComponentChildren;
  /** Changing it starts again from the first page. */
  resetKey?: unknown;
  empty: string;
}) {
  const [tokens, setTokens] = useState<(string | undefined)[]>([undefined]);
  const current = tokens[tokens.length - 1];
  useEffect(() => setTokens([undefined]), [props.resetKey]);
  const page = useAsync(() => props.load(current), [current, props.resetKey]);
  return (
    <div>
      <ErrorNote error={page.error} what={`Could not load ${props.caption.toLowerCase()}`} />
      <table>
        <caption>{props.caption}</caption>
        <TableHead columns={props.columns} />
        <tbody>{page.data?.items.map((item) => props.row(item))}</tbody>
      </table>
      {page.loading ? <Loading what={props.caption.toLowerCase()} /> : null}
      {!page.loading && page.data?.items.length === 0 ? <p class="muted">{props.empty}</p> : null}
      <div class="pager">
        <button type="button" disabled={tokens.length <= 1} onClick={() => setTokens(tokens.slice(0, -1))}>
          Previous page
        </button>
        <span class="muted">Page {tokens.length}</span>
        <button
          type="button"
          disabled={!page.data?.next}
          onClick={() => page.data?.next && setTokens([...tokens, page.data.next])}
        >
          Next page
        </button>
      </div>
    </div>
  );
}

/** A modal dialog with a heading; Escape or Close ends it. */
export function Dialog(props: { title: string; onClose: () => void; children: ComponentChildren }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
  }, []);
  return (
    <dialog ref={ref} aria-label={props.title} onClose={props.onClose} onCancel={props.onClose}>
      <header class="dialog-head">
        <h2>{props.title}</h2>
        <button type="button" onClick={props.onClose}>
          Close
        </button>
      </header>
      {props.children}
    </dialog>
  );
}

export const when = (iso: unknown): string => {
  if (typeof iso !== "string" || iso === "") return "—";
  const t = Date.parse(iso);
  return Number.isNaN(t) ? iso : new Date(t).toLocaleString();
};

/** Reads a file the person picked, as text. */
export const readFileText = (input: HTMLInputElement): Promise<string> =>
  input.files?.[0] ? input.files[0].text() : Promise.resolve("");

/** A table's column headings. */
export function TableHead({ columns }: { columns: readonly string[] }) {
  return (
    <thead>
      <tr>
        {columns.map((c) => (
          <th scope="col" key={c}>
            {c}
          </th>
        ))}
      </tr>
    </thead>
  );
}

/** What a blade says instead of its content when the signed-in caller lacks the right it needs. */
export function NeedsRight(props: { blade: string; children: ComponentChildren }) {
  return (
    <section>
      <h1>{props.blade}</h1>
      <p>{props.children}</p>
    </section>
  );
}

/** A search by id prefix: the text typed, applied on submit (the server filters, ?prefix=). */
export function PrefixSearch(props: {
  label: string;
  onSearch: (prefix: string) => void;
  class?: string;
  children?: ComponentChildren;
}) {
  const [text, setText] = useState("");
  return (
    <form
      class={props.class}
      onSubmit={(e) => {
        e.preventDefault();
        props.onSearch(text.trim());
      }}
    >
      <label>
        <span class="label">{props.label}</span>
        <input type="search" value={text} onInput={(e) => setText(e.currentTarget.value)} />
      </label>
      <button type="submit">Search</button>
      {props.children}
    </form>
  );
}
