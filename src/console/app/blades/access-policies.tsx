// Access policies: shared access policies with their rights; keys on request; add, regenerate
// keys, delete (management.md §3). Changing them needs ServiceConfig.
import { useState } from "preact/hooks";
import { RIGHTS, type Right } from "../../../domain/rights.js";
import { can } from "../api.js";
import { listKeys, type PolicyWithKeys, putServiceProperties, readService } from "../service-resource.js";
import { useSession } from "../session.js";
import { Dialog, ErrorNote, Field, Loading, NeedsRight, TableHead, useAsync } from "../ui.js";

type PolicyInput = Omit<PolicyWithKeys, "primaryKey" | "secondaryKey"> & { primaryKey?: string; secondaryKey?: string };

export function AccessPolicies() {
  const { api, who, servicePath } = useSession();
  const [version, setVersion] = useState(0);
  const [shown, setShown] = useState<string | undefined>();
  const [adding, setAdding] = useState(false);
  const [error, setError] = useState<Error | undefined>();
  const policies = useAsync(
    () => (can(who, "ServiceConfig") ? listKeys(api, servicePath) : Promise.resolve([])),
    [version],
  );
  if (!can(who, "ServiceConfig")) {
    return (
      <NeedsRight blade="Access policies">
        You are signed in with '{who.caller.name}', which has {who.caller.rights.join(", ")}. Policies are read and
        changed with ServiceConfig.
      </NeedsRight>
    );
  }
  const write = async (next: PolicyInput[]) => {
    setError(undefined);
    try {
      const { etag } = await readService(api, servicePath);
      await putServiceProperties(api, servicePath, etag, { authorizationPolicies: next as PolicyWithKeys[] });
      setVersion(version + 1);
    } catch (e) {
      setError(e as Error);
    }
  };
  const all = policies.data ?? [];
  const signedInWith = (p: PolicyWithKeys) =>
    who.caller.kind === "policy" && p.keyName.toLowerCase() === who.caller.name.toLowerCase();
  return (
    <section>
      <h1>Access policies</h1>
      <div class="toolbar">
        <button type="button" class="primary" onClick={() => setAdding(true)}>
          Add shared access policy
        </button>
      </div>
      {policies.loading ? <Loading what="policies" /> : null}
      <ErrorNote error={policies.error ?? error} />
      <table>
        <caption>Shared access policies</caption>
        <TableHead columns={["Name", "Rights", "Keys", "Actions"]} />
        <tbody>
          {all.map((p) => (
            <tr key={p.keyName}>
              <td>{p.keyName}</td>
              <td>{p.rights}</td>
              <td>
                {shown === p.keyName ? (
                  <div class="mono small">
                    <div>Primary: {p.primaryKey}</div>
                    <div>Secondary: {p.secondaryKey}</div>
                    <div>
                      Connection string: HostName={who.service.hostName};SharedAccessKeyName={p.keyName}
                      ;SharedAccessKey=
                      {p.primaryKey}
                    </div>
                  </div>
                ) : (
                  <button type="button" onClick={() => setShown(p.keyName)} aria-label={`Show keys of ${p.keyName}`}>
                    Show keys
                  </button>
                )}
              </td>
              <td>
                <button
                  type="button"
                  aria-label={`Regenerate keys of ${p.keyName}`}
                  onClick={() => {
                    if (!confirm(`Regenerate both keys of '${p.keyName}'? Clients using them stop working.`)) return;
                    void write(all.map((x) => (x === p ? { keyName: x.keyName, rights: x.rights } : x)));
                  }}
                >
                  Regenerate keys
                </button>
                <button
                  type="button"
                  class="danger"
                  disabled={signedInWith(p)}
                  title={signedInWith(p) ? "You are signed in with this policy." : undefined}
                  aria-label={`Delete ${p.keyName}`}
                  onClick={() => confirm(`Delete the policy '${p.keyName}'?`) && write(all.filter((x) => x !== p))}
                >
                  Delete
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {adding ? (
        <AddPolicy
          onClose={() => setAdding(false)}
          onAdd={(p) => {
            setAdding(false);
            void write([...all, p]);
          }}
        />
      ) : null}
    </section>
  );
}

function AddPolicy(props: { onAdd: (p: PolicyInput) => void; onClose: () => void }) {
  const [name, setName] = useState("");
  const [rights, setRights] = useState<Right[]>(["EnrollmentRead"]);
  const [problem, setProblem] = useState<string | undefined>();
  return (
    <Dialog title="Add shared access policy" onClose={props.onClose}>
      <form
        class="form"
        onSubmit={(e) => {
          e.preventDefault();
          if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) return setProblem("1-64 letters, digits, '-', '.', '_'.");
          if (rights.length === 0) return setProblem("Choose at least one right.");
          props.onAdd({ keyName: name, rights: rights.join(", ") });
        }}
      >
        <Field label="Policy name" problem={problem}>
          <input value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </Field>
        <fieldset>
          <legend>Rights</legend>
          {RIGHTS.map((r) => (
            <label key={r} class="check">
              <input
                type="checkbox"
                checked={rights.includes(r)}
                onChange={(e) => setRights(e.currentTarget.checked ? [...rights, r] : rights.filter((x) => x !== r))}
              />
              {r}
            </label>
          ))}
        </fieldset>
        <button type="submit" class="primary">
          Create
        </button>
      </form>
    </Dialog>
  );
}
