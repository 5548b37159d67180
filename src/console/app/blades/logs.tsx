// Logs: the diagnostic log (DeviceOperations and ServiceOperations, behaviors.md §11) filtered
// by category, result and id; and, with ServiceConfig, the audit trail of changes.
import { useState } from "preact/hooks";
import { can } from "../api.js";
import { useSession } from "../session.js";
import type { DiagnosticLine } from "../time-series.js";
import { ErrorNote, Loading, TableHead, useAsync, when } from "../ui.js";

interface AuditEvent {
  seq: number;
  at: string;
  caller: { kind: string; name: string; displayName?: string };
  method: string;
  path: string;
  status: number;
  callerIp: string;
}

export function Logs() {
  const { api, who, servicePath } = useSession();
  const [category, setCategory] = useState("");
  const [result, setResult] = useState("");
  const [id, setId] = useState("");
  const [filter, setFilter] = useState({ category: "", result: "", id: "", tick: 0 });
  const lines = useAsync(
    () =>
      can(who, "RegistrationStatusRead")
        ? api.get<DiagnosticLine[]>("/diagnostics", {
            category: filter.category || undefined,
            result: filter.result || undefined,
            id: filter.id || undefined,
          })
        : Promise.resolve([]),
    [filter],
  );
  const audit = useAsync(
    () =>
      can(who, "ServiceConfig")
        ? api.get<{ value: AuditEvent[] }>(`${servicePath}/auditEvents`).then((r) => r.value)
        : Promise.resolve(undefined),
    [filter.tick],
  );
  return (
    <section>
      <h1>Logs</h1>
      <form
        class="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          setFilter({ category, result, id: id.trim(), tick: filter.tick + 1 });
        }}
      >
        <label>
          <span class="label">Category</span>
          <select value={category} onChange={(e) => setCategory(e.currentTarget.value)}>
            <option value="">All</option>
            <option value="DeviceOperations">DeviceOperations</option>
            <option value="ServiceOperations">ServiceOperations</option>
          </select>
        </label>
        <label>
          <span class="label">Result</span>
          <select value={result} onChange={(e) => setResult(e.currentTarget.value)}>
            <option value="">All</option>
            <option value="Success">Success</option>
            <option value="ClientError">ClientError</option>
            <option value="Failure">Failure</option>
          </select>
        </label>
        <label>
          <span class="label">Registration or enrollment ID</span>
          <input value={id} onInput={(e) => setId(e.currentTarget.value)} />
        </label>
        <button type="submit">Apply</button>
      </form>
      {!can(who, "RegistrationStatusRead") ? <p>The diagnostic log needs RegistrationStatusRead.</p> : null}
      <ErrorNote error={lines.error} what="Could not read the diagnostic log" />
      {lines.loading ? <Loading what="the diagnostic log" /> : null}
      <table>
        <caption>Diagnostic log, newest first</caption>
        <TableHead
          columns={[
            "Time",
            "Category",
            "Operation",
            "ID",
            "Protocol",
            "Result",
            "Duration (ms)",
            "Caller",
            "Description",
          ]}
        />
        <tbody>
          {[...(lines.data ?? [])].reverse().map((l, i) => (
            <tr key={i} class={l.ResultType === "Success" ? "" : "failed"}>
              <td>{when(l.TimeGenerated)}</td>
              <td>{l.Category}</td>
              <td>{l.OperationName}</td>
              <td class="mono">{l.properties.id}</td>
              <td>{l.properties.protocol ?? ""}</td>
              <td>
                {l.ResultType} {l.ResultSignature}
              </td>
              <td>{l.DurationMs}</td>
              <td class="mono">{(l as unknown as { CallerIpAddress?: string }).CallerIpAddress ?? ""}</td>
              <td>{l.ResultDescription}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {audit.data ? (
        <>
          <h2>Audit trail</h2>
          <ErrorNote error={audit.error} />
          <table>
            <caption>Changes and key reads, newest first</caption>
            <TableHead columns={["Time", "Caller", "Request", "Status", "Address"]} />
            <tbody>
              {audit.data.map((a) => (
                <tr key={a.seq}>
                  <td>{when(a.at)}</td>
                  <td>{a.caller.displayName ?? a.caller.name}</td>
                  <td class="mono">
                    {a.method} {a.path}
                  </td>
                  <td>{a.status}</td>
                  <td class="mono">{a.callerIp}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : null}
    </section>
  );
}
