// Enrollments: individual enrollments and enrollment groups, searched and paged on the server;
// add, edit, delete; keys on request; a group's registration records.
import { useState } from "preact/hooks";
import { can } from "../api.js";
import { bodyToForm, type EnrollmentForm, type EnrollmentKind, emptyForm } from "../enrollment-model.js";
import { useSession } from "../session.js";
import { Dialog, ErrorNote, Loading, PagedTable, PrefixSearch, useAsync, when } from "../ui.js";
import { collectionOf, EnrollmentEditor } from "./enrollment-editor.js";

type Json = Record<string, unknown>;

const idOf = (kind: EnrollmentKind, e: Json): string =>
  String(kind === "group" ? e.enrollmentGroupId : e.registrationId);

const attestationName = (e: Json): string => {
  const a = (e.attestation as { type?: string; x509?: { caReferences?: unknown } } | undefined) ?? {};
  if (a.type === "symmetricKey") return "Symmetric key";
  if (a.type === "tpm") return "TPM";
  return a.x509?.caReferences ? "X.509 (CA certificate)" : "X.509";
};

export function Enrollments() {
  const { api, who } = useSession();
  const [kind, setKind] = useState<EnrollmentKind>("individual");
  const [applied, setApplied] = useState("");
  const [editing, setEditing] = useState<{ form: EnrollmentForm; isNew: boolean } | undefined>();
  const [open, setOpen] = useState<string | undefined>();
  const [version, setVersion] = useState(0);
  const writable = can(who, "EnrollmentWrite");
  const collection = collectionOf(kind);

  const edit = async (id: string) => {
    const path = `/${collection}/${encodeURIComponent(id)}`;
    const [record, attestation] = await Promise.all([
      api.get<Json>(path),
      api
        .call<Json>("POST", `${path}/attestationmechanism`, { query: { includeCertificates: "true" } })
        .then((r) => r.body),
    ]);
    setOpen(undefined);
    setEditing({ form: bodyToForm(kind, record, attestation), isNew: false });
  };

  return (
    <section>
      <h1>Enrollments</h1>
      <div role="tablist" aria-label="Enrollment kinds" class="tabs">
        {(
          [
            ["individual", "Individual enrollments"],
            ["group", "Enrollment groups"],
          ] as const
        ).map(([k, name]) => (
          <button
            key={k}
            type="button"
            role="tab"
            aria-selected={kind === k}
            onClick={() => {
              setKind(k);
              setOpen(undefined);
            }}
          >
            {name}
          </button>
        ))}
      </div>
      <div class="toolbar">
        <PrefixSearch label="Search by ID prefix" onSearch={setApplied} />
        {writable ? (
          <>
            <button
              type="button"
              class="primary"
              onClick={() => setEditing({ form: emptyForm("individual"), isNew: true })}
            >
              Add individual enrollment
            </button>
            <button type="button" class="primary" onClick={() => setEditing({ form: emptyForm("group"), isNew: true })}>
              Add enrollment group
            </button>
          </>
        ) : null}
      </div>
      <PagedTable<Json>
        caption={kind === "group" ? "Enrollment groups" : "Individual enrollments"}
        columns={
          kind === "group"
            ? ["Group name", "Attestation", "Status", "Allocation", "Updated"]
            : ["Registration ID", "Device ID", "Attestation", "Status", "Allocation", "Updated"]
        }
        resetKey={`${kind}|${applied}|${version}`}
        load={(c) => api.page<Json>(`/${collection}/query`, 50, c, applied || undefined)}
        empty={applied ? `Nothing starts with '${applied}'.` : "None yet."}
        row={(e) => {
          const id = idOf(kind, e);
          return (
            <tr key={id}>
              <td>
                <button type="button" class="link" onClick={() => setOpen(id)}>
                  {id}
                </button>
              </td>
              {kind === "individual" ? <td>{String(e.deviceId ?? "—")}</td> : null}
              <td>{attestationName(e)}</td>
              <td>{e.provisioningStatus === "disabled" ? "Disabled" : "Enabled"}</td>
              <td>{String(e.allocationPolicy ?? "service default")}</td>
              <td>{when(e.lastUpdatedDateTimeUtc)}</td>
            </tr>
          );
        }}
      />
      {open ? (
        <EnrollmentDetails
          kind={kind}
          id={open}
          onClose={() => setOpen(undefined)}
          onEdit={() => edit(open)}
          onDeleted={() => {
            setOpen(undefined);
            setVersion(version + 1);
          }}
        />
      ) : null}
      {editing ? (
        <EnrollmentEditor
          initial={editing.form}
          isNew={editing.isNew}
          onDone={(saved) => {
            setEditing(undefined);
            if (saved) setVersion(version + 1);
          }}
        />
      ) : null}
    </section>
  );
}

function EnrollmentDetails(props: {
  kind: EnrollmentKind;
  id: string;
  onClose: () => void;
  onEdit: () => Promise<void>;
  onDeleted: () => void;
}) {
  const { api, who } = useSession();
  const path = `/${collectionOf(props.kind)}/${encodeURIComponent(props.id)}`;
  const record = useAsync(() => api.get<Json>(path), [path]);
  const [keys, setKeys] = useState<Json | undefined>();
  const [error, setError] = useState<Error | undefined>();
  const writable = can(who, "EnrollmentWrite");
  const act = (f: () => Promise<void>) => () => f().catch((e: Error) => setError(e));
  const noun = props.kind === "group" ? "enrollment group" : "individual enrollment";
  return (
    <Dialog
      title={`${props.kind === "group" ? "Enrollment group" : "Individual enrollment"} ${props.id}`}
      onClose={props.onClose}
    >
      {record.loading ? <Loading what={noun} /> : null}
      <ErrorNote error={record.error ?? error} />
      {record.data ? (
        <>
          <div class="actions">
            <button
              type="button"
              onClick={act(async () => {
                const r = await api.call<Json>("POST", `${path}/attestationmechanism`);
                setKeys(r.body);
              })}
            >
              Show keys
            </button>
            {writable ? (
              <>
                <button type="button" onClick={act(props.onEdit)}>
                  Edit
                </button>
                <button
                  type="button"
                  class="danger"
                  onClick={act(async () => {
                    if (!confirm(`Delete the ${noun} '${props.id}'?`)) return;
                    await api.call("DELETE", path, { headers: { "If-Match": `"${String(record.data?.etag)}"` } });
                    props.onDeleted();
                  })}
                >
                  Delete
                </button>
              </>
            ) : null}
          </div>
          {keys ? (
            <>
              <h3>Attestation with keys</h3>
              <pre class="mono">{JSON.stringify(keys, null, 2)}</pre>
            </>
          ) : null}
          <h3>As JSON</h3>
          <pre class="mono">{JSON.stringify(record.data, null, 2)}</pre>
          {props.kind === "group" ? <GroupRegistrations groupId={props.id} /> : null}
        </>
      ) : null}
    </Dialog>
  );
}

function GroupRegistrations({ groupId }: { groupId: string }) {
  const { api, who } = useSession();
  if (!can(who, "RegistrationStatusRead"))
    return <p class="muted">Registration records need RegistrationStatusRead.</p>;
  return (
    <PagedTable<Json>
      caption="Registration records"
      columns={["Registration ID", "Status", "Assigned hub", "Device ID", "Updated"]}
      load={(c) => api.page<Json>(`/registrations/${encodeURIComponent(groupId)}/query`, 50, c)}
      empty="No device of this group has registered yet."
      row={(r) => (
        <tr key={String(r.registrationId)}>
          <td>
            <a href={`#/registrations/${encodeURIComponent(String(r.registrationId))}`}>{String(r.registrationId)}</a>
          </td>
          <td>{String(r.status)}</td>
          <td>{String(r.assignedHub ?? "—")}</td>
          <td>{String(r.deviceId ?? "—")}</td>
          <td>{when(r.lastUpdatedDateTimeUtc)}</td>
        </tr>
      )}
    />
  );
}
