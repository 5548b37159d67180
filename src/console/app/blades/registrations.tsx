// Registrations: every registration record with its status and hub; one record's attempts
// explained step by step, its webhook calls, a dry run, delete and deprovision.
import { useEffect, useState } from "preact/hooks";
import { can } from "../api.js";
import { useSession } from "../session.js";
import { Dialog, ErrorNote, Loading, NeedsRight, PagedTable, PrefixSearch, useAsync, when } from "../ui.js";

type Json = Record<string, unknown>;

interface Attempt {
  at: string;
  outcome: string;
  errorCode?: number;
  message?: string;
  durationMs: number;
  protocol?: string;
  sourceAddress: string;
  steps: { step: string; outcome: string; durationMs: number; detail?: string }[];
}

const recordOfHash = (): string | undefined => {
  const [, id] = location.hash.replace(/^#\/?/, "").split("/");
  return id ? decodeURIComponent(id) : undefined;
};

export function Registrations() {
  const { api, who } = useSession();
  const [applied, setApplied] = useState("");
  const [open, setOpen] = useState<string | undefined>(recordOfHash());
  const [version, setVersion] = useState(0);
  useEffect(() => {
    const onHash = () => setOpen(recordOfHash());
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);
  if (!can(who, "RegistrationStatusRead")) {
    return (
      <NeedsRight blade="Registrations">
        Reading registration records needs a policy with RegistrationStatusRead.
      </NeedsRight>
    );
  }
  const close = () => {
    setOpen(undefined);
    if (recordOfHash()) location.hash = "#/registrations";
  };
  return (
    <section>
      <h1>Registrations</h1>
      <PrefixSearch label="Search by registration ID prefix" onSearch={setApplied} class="toolbar">
        <button type="button" onClick={() => setVersion(version + 1)}>
          Refresh
        </button>
      </PrefixSearch>
      <PagedTable<Json>
        caption="Registration records"
        columns={["Registration ID", "Status", "Assigned hub", "Device ID", "Last updated"]}
        resetKey={`${applied}|${version}`}
        load={(c) => api.page<Json>("/registrations/query", 50, c, applied || undefined)}
        empty={applied ? `No record starts with '${applied}'.` : "No device has registered yet."}
        row={(r) => {
          const id = String(r.registrationId);
          return (
            <tr key={id}>
              <td>
                <button type="button" class="link" onClick={() => setOpen(id)}>
                  {id}
                </button>
              </td>
              <td>{String(r.status)}</td>
              <td>{String(r.assignedHub ?? "—")}</td>
              <td>{String(r.deviceId ?? "—")}</td>
              <td>{when(r.lastUpdatedDateTimeUtc)}</td>
            </tr>
          );
        }}
      />
      {open ? (
        <RegistrationDetails
          id={open}
          onClose={close}
          onDeleted={() => {
            close();
            setVersion(version + 1);
          }}
        />
      ) : null}
    </section>
  );
}

function RegistrationDetails(props: { id: string; onClose: () => void; onDeleted: () => void }) {
  const { api, who } = useSession();
  const path = `/registrations/${encodeURIComponent(props.id)}`;
  const record = useAsync(() => api.get<Json>(path).catch((e) => ({ missing: e as Error })), [path]);
  const attempts = useAsync(() => api.get<Attempt[]>(`${path}/attempts`), [path]);
  const [webhooks, setWebhooks] = useState<unknown>();
  const [dryRun, setDryRun] = useState<unknown>();
  const [error, setError] = useState<Error | undefined>();
  const act = (f: () => Promise<void>) => () => f().catch((e: Error) => setError(e));
  const state = record.data && !("missing" in record.data) ? record.data : undefined;
  const remove = (deprovision: boolean) =>
    act(async () => {
      const what = deprovision ? "Delete the record and remove the device from its hub" : "Delete the record";
      if (!confirm(`${what} for '${props.id}'?`)) return;
      await api.call("DELETE", path, deprovision ? { query: { deprovision: "true" } } : {});
      props.onDeleted();
    });
  return (
    <Dialog title={`Registration ${props.id}`} onClose={props.onClose}>
      {record.loading ? <Loading what="the registration record" /> : null}
      <ErrorNote error={error} />
      {state ? (
        <dl class="facts">
          <dt>Status</dt>
          <dd>{String(state.status)}</dd>
          <dt>Assigned hub</dt>
          <dd>{String(state.assignedHub ?? "—")}</dd>
          <dt>Device ID</dt>
          <dd>{String(state.deviceId ?? "—")}</dd>
          <dt>Last updated</dt>
          <dd>{when(state.lastUpdatedDateTimeUtc)}</dd>
          {state.errorMessage ? (
            <>
              <dt>Error</dt>
              <dd>
                {String(state.errorCode ?? "")} {String(state.errorMessage)}
              </dd>
            </>
          ) : null}
        </dl>
      ) : record.data ? (
        <p class="muted">No registration record: the device was refused before one was made, or it was deleted.</p>
      ) : null}
      <div class="actions">
        <button
          type="button"
          onClick={act(async () => setWebhooks(await api.get(`${path}/webhookCalls`)))}
          disabled={!state}
        >
          Webhook calls
        </button>
        <button
          type="button"
          onClick={act(async () => setDryRun((await api.call("POST", `${path}/dryRun`, { body: {} })).body))}
          disabled={!can(who, "EnrollmentRead")}
        >
          Dry run
        </button>
        {can(who, "RegistrationStatusWrite") && state ? (
          <>
            <button type="button" class="danger" onClick={remove(false)}>
              Delete record
            </button>
            <button type="button" class="danger" onClick={remove(true)}>
              Delete and deprovision
            </button>
          </>
        ) : null}
      </div>
      {webhooks !== undefined ? (
        <>
          <h3>Webhook calls</h3>
          <pre class="mono">{JSON.stringify(webhooks, null, 2)}</pre>
        </>
      ) : null}
      {dryRun !== undefined ? (
        <>
          <h3>Dry run</h3>
          <pre class="mono">{JSON.stringify(dryRun, null, 2)}</pre>
        </>
      ) : null}
      <h2>Attempts, explained</h2>
      <ErrorNote error={attempts.error} what="No attempts to explain" />
      {attempts.data?.map((a) => (
        <article key={a.at} class="attempt" aria-label={`Attempt at ${when(a.at)}`}>
          <h3>
            {when(a.at)}: {a.outcome}
            {a.errorCode ? ` (${a.errorCode})` : ""} over {a.protocol ?? "an unknown protocol"} from{" "}
            {a.sourceAddress || "an unknown address"}, {a.durationMs} ms
          </h3>
          {a.message ? <p>{a.message}</p> : null}
          <ol>
            {a.steps.map((s) => (
              <li key={s.step} class={s.outcome}>
                <strong>{s.step}</strong> {s.outcome}
                {s.detail ? `: ${s.detail}` : ""} <span class="muted">({s.durationMs} ms)</span>
              </li>
            ))}
          </ol>
        </article>
      ))}
    </Dialog>
  );
}
