// Certificates: CA certificates with their status, subject, thumbprint and expiry; upload, and
// the proof-of-possession flow (management.md §5): generate a code, upload a certificate whose
// subject CN is that code, signed by the CA's key.
import { useState } from "preact/hooks";
import { can } from "../api.js";
import { useSession } from "../session.js";
import { Dialog, ErrorNote, Field, Loading, NeedsRight, TableHead, useAsync } from "../ui.js";

interface Certificate {
  name: string;
  etag: string;
  properties: {
    subject: string;
    expiry: string;
    thumbprint: string;
    isVerified: boolean;
    created: string;
    updated: string;
    verificationCode?: string;
  };
}

export function Certificates() {
  const { api, who, servicePath } = useSession();
  const [version, setVersion] = useState(0);
  const [adding, setAdding] = useState(false);
  const [verifying, setVerifying] = useState<Certificate | undefined>();
  const [error, setError] = useState<Error | undefined>();
  const list = useAsync(
    () =>
      can(who, "ServiceConfig")
        ? api.get<{ value: Certificate[] }>(`${servicePath}/certificates`).then((r) => r.value)
        : Promise.resolve([]),
    [version],
  );
  if (!can(who, "ServiceConfig")) {
    return (
      <NeedsRight blade="Certificates">
        CA certificates are read and changed with a policy that has ServiceConfig.
      </NeedsRight>
    );
  }
  const remove = (c: Certificate) => async () => {
    if (!confirm(`Delete the CA certificate '${c.name}'? Groups that name it stop matching.`)) return;
    try {
      await api.call("DELETE", `${servicePath}/certificates/${encodeURIComponent(c.name)}`, {
        headers: { "If-Match": c.etag },
      });
      setVersion(version + 1);
    } catch (e) {
      setError(e as Error);
    }
  };
  return (
    <section>
      <h1>Certificates</h1>
      <div class="toolbar">
        <button type="button" class="primary" onClick={() => setAdding(true)}>
          Add certificate
        </button>
      </div>
      <ErrorNote error={list.error ?? error} />
      {list.loading ? <Loading what="certificates" /> : null}
      <table>
        <caption>CA certificates</caption>
        <TableHead columns={["Name", "Status", "Subject", "Thumbprint", "Expires", "Actions"]} />
        <tbody>
          {list.data?.map((c) => (
            <tr key={c.name}>
              <td>{c.name}</td>
              <td>{c.properties.isVerified ? "Verified" : "Unverified"}</td>
              <td>{c.properties.subject}</td>
              <td class="mono">{c.properties.thumbprint}</td>
              <td>{c.properties.expiry}</td>
              <td>
                {c.properties.isVerified ? null : (
                  <button type="button" onClick={() => setVerifying(c)} aria-label={`Verify ${c.name}`}>
                    Verify
                  </button>
                )}
                <button type="button" class="danger" onClick={remove(c)} aria-label={`Delete ${c.name}`}>
                  Delete
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {list.data?.length === 0 ? <p class="muted">No CA certificate yet.</p> : null}
      {adding ? (
        <AddCertificate
          onDone={(saved) => {
            setAdding(false);
            if (saved) setVersion(version + 1);
          }}
        />
      ) : null}
      {verifying ? (
        <VerifyCertificate
          certificate={verifying}
          onDone={() => {
            setVerifying(undefined);
            setVersion(version + 1);
          }}
        />
      ) : null}
    </section>
  );
}

function AddCertificate({ onDone }: { onDone: (saved: boolean) => void }) {
  const { api, servicePath } = useSession();
  const [name, setName] = useState("");
  const [pem, setPem] = useState("");
  const [verified, setVerified] = useState(false);
  const [error, setError] = useState<Error | undefined>();
  const save = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    try {
      if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) throw new Error("Name: 1-64 letters, digits, '-', '_' or '.'.");
      if (!pem.includes("BEGIN CERTIFICATE")) throw new Error("Choose the CA's public certificate (.pem or .cer).");
      await api.call("PUT", `${servicePath}/certificates/${encodeURIComponent(name)}`, {
        body: { properties: { certificate: pem.trim(), isVerified: verified } },
      });
      onDone(true);
    } catch (err) {
      setError(err as Error);
    }
  };
  return (
    <Dialog title="Add certificate" onClose={() => onDone(false)}>
      <form onSubmit={save} class="form" noValidate>
        <Field label="Certificate name">
          <input value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </Field>
        <Field label="Certificate .pem or .cer file" hint="The public certificate only, never its key.">
          <input
            type="file"
            accept=".pem,.cer,.crt"
            onChange={async (e) => setPem((await e.currentTarget.files?.[0]?.text()) ?? "")}
          />
        </Field>
        <Field label="Set certificate status to verified on upload" hint="Skips proof of possession.">
          <input type="checkbox" checked={verified} onChange={(e) => setVerified(e.currentTarget.checked)} />
        </Field>
        <ErrorNote error={error} what="Could not upload the certificate" />
        <div class="actions">
          <button type="submit" class="primary">
            Save
          </button>
        </div>
      </form>
    </Dialog>
  );
}

function VerifyCertificate({ certificate, onDone }: { certificate: Certificate; onDone: () => void }) {
  const { api, servicePath } = useSession();
  const base = `${servicePath}/certificates/${encodeURIComponent(certificate.name)}`;
  const [etag, setEtag] = useState(certificate.etag);
  const [code, setCode] = useState<string | undefined>();
  const [pem, setPem] = useState("");
  const [error, setError] = useState<Error | undefined>();
  const [done, setDone] = useState(false);
  const generate = async () => {
    setError(undefined);
    try {
      const r = await api.call<Certificate>("POST", `${base}/generateVerificationCode`, {
        headers: { "If-Match": etag },
      });
      setEtag(r.body.etag);
      setCode(r.body.properties.verificationCode);
    } catch (err) {
      setError(err as Error);
    }
  };
  const verify = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    try {
      if (!pem.includes("BEGIN CERTIFICATE")) throw new Error("Choose the verification certificate (.pem or .cer).");
      await api.call("POST", `${base}/verifyCertificate`, {
        body: { certificate: pem.trim() },
        headers: { "If-Match": etag },
      });
      setDone(true);
    } catch (err) {
      setError(err as Error);
    }
  };
  return (
    <Dialog title={`Verify ${certificate.name}`} onClose={onDone}>
      <ol class="steps">
        <li>
          <button type="button" onClick={generate}>
            Generate verification code
          </button>
          {code ? (
            <p>
              Verification code:{" "}
              <output class="mono" aria-label="Verification code">
                {code}
              </output>
            </p>
          ) : null}
        </li>
        <li>
          Make a certificate whose subject CN is that code, signed with the CA's private key (for example{" "}
          <code>provisio cert generate-verification --ca-cert … --ca-key … --code … --out verify.pem</code>, or
          OpenSSL).
        </li>
        <li>
          <form onSubmit={verify} class="form" noValidate>
            <Field label="Verification certificate .pem or .cer file">
              <input
                type="file"
                accept=".pem,.cer,.crt"
                onChange={async (e) => setPem((await e.currentTarget.files?.[0]?.text()) ?? "")}
              />
            </Field>
            <button type="submit" class="primary" disabled={!code}>
              Verify
            </button>
          </form>
        </li>
      </ol>
      <ErrorNote error={error} what="Not verified" />
      {done ? (
        <p role="status" class="ok">
          {certificate.name} is verified.
        </p>
      ) : null}
    </Dialog>
  );
}
