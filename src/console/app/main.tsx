// The web console's shell: sign-in, the navigation between blades, the signed-in session.
import "./app.css";
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { can } from "./api.js";
import { AccessPolicies } from "./blades/access-policies.js";
import { BuiltinHubs } from "./blades/builtin-hubs.js";
import { Certificates } from "./blades/certificates.js";
import { Enrollments } from "./blades/enrollments.js";
import { LinkedHubs } from "./blades/linked-hubs.js";
import { Logs } from "./blades/logs.js";
import { Metrics } from "./blades/metrics.js";
import { Networking } from "./blades/networking.js";
import { Overview } from "./blades/overview.js";
import { Registrations } from "./blades/registrations.js";
import { finishIssuerSignIn, type OidcConfig, startIssuerSignIn } from "./oidc-sign-in.js";
import { restore, type Session, SessionContext, signIn, signInWithToken, signOut } from "./session.js";
import { ErrorNote, Field, Loading } from "./ui.js";

const BLADES = [
  ["overview", "Overview", Overview],
  ["enrollments", "Enrollments", Enrollments],
  ["registrations", "Registrations", Registrations],
  ["certificates", "Certificates", Certificates],
  ["linked-hubs", "Linked hubs", LinkedHubs],
  ["access-policies", "Access policies", AccessPolicies],
  ["networking", "Networking", Networking],
  ["metrics", "Metrics", Metrics],
  ["logs", "Logs", Logs],
  ["builtin-hubs", "Built-in hubs", BuiltinHubs],
] as const;

type BladeId = (typeof BLADES)[number][0];

const bladeOfHash = (): BladeId => {
  const id = location.hash.replace(/^#\/?/, "").split("/")[0];
  return BLADES.find(([b]) => b === id)?.[0] ?? "overview";
};

function SignIn(props: {
  onSignedIn: (s: Session) => void;
  initialError?: Error | undefined;
  oidc?: OidcConfig | undefined;
}) {
  const [text, setText] = useState("");
  const [error, setError] = useState<Error | undefined>(props.initialError);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      props.onSignedIn(await signIn(text));
    } catch (err) {
      setError(err as Error);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="sign-in">
      <h1>Provisio</h1>
      <p>Sign in with a service connection string of this provisioning service.</p>
      <form onSubmit={submit}>
        <Field
          label="Connection string"
          hint="provisio.json's serviceConnectionString, or `provisio connection-string show`. It stays in this tab: every call is signed here, and the key is never sent."
        >
          <textarea
            name="connectionString"
            rows={3}
            value={text}
            onInput={(e) => setText(e.currentTarget.value)}
            placeholder="HostName=…;SharedAccessKeyName=…;SharedAccessKey=…"
            autoComplete="off"
            spellcheck={false}
          />
        </Field>
        <button type="submit" class="primary" disabled={busy}>
          Sign in
        </button>
      </form>
      {props.oidc ? (
        <p>
          <button
            type="button"
            onClick={() => startIssuerSignIn(props.oidc as OidcConfig).catch((e: Error) => setError(e))}
          >
            Sign in with {new URL(props.oidc.issuer).host}
          </button>
        </p>
      ) : null}
      <ErrorNote error={error} what="Could not sign in" />
    </main>
  );
}

function Shell({ session, onSignOut }: { session: Session; onSignOut: () => void }) {
  const [blade, setBlade] = useState<BladeId>(bladeOfHash());
  useEffect(() => {
    const onHash = () => setBlade(bladeOfHash());
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);
  const Blade = BLADES.find(([b]) => b === blade)?.[2] ?? Overview;
  const { who } = session;
  return (
    <SessionContext.Provider value={session}>
      <header class="top">
        <strong>Provisio</strong>
        <span>
          {who.service.name} · <span class="mono">{who.service.idScope}</span>
        </span>
        <span class="muted">
          Signed in as {who.caller.displayName ?? who.caller.name}
          {can(who, "ServiceConfig") || can(who, "EnrollmentWrite") ? "" : " (read only)"}
        </span>
        <button type="button" onClick={onSignOut}>
          Sign out
        </button>
      </header>
      <div class="layout">
        <nav aria-label="Blades">
          <ul>
            {BLADES.map(([id, name]) => (
              <li key={id}>
                <a href={`#/${id}`} aria-current={id === blade ? "page" : undefined}>
                  {name}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <main>
          <Blade />
        </main>
      </div>
    </SessionContext.Provider>
  );
}

function App() {
  const [session, setSession] = useState<Session | undefined>();
  const [starting, setStarting] = useState(true);
  const [startError, setStartError] = useState<Error | undefined>();
  const [oidc, setOidc] = useState<OidcConfig | undefined>();
  useEffect(() => {
    const start = async (): Promise<Session | undefined> => {
      const config = (await fetch("/console/config.json").then((r) => r.json())) as { oidc?: OidcConfig };
      setOidc(config.oidc);
      // Back from the issuer's login page: trade the code for a token, then sign in with it.
      const token = config.oidc ? await finishIssuerSignIn(config.oidc) : undefined;
      if (token) return signInWithToken(token);
      return restore();
    };
    start()
      .then(setSession, (err: Error) => {
        signOut();
        setStartError(err);
      })
      .finally(() => setStarting(false));
  }, []);
  if (starting) return <Loading what="your session" />;
  if (!session) return <SignIn onSignedIn={setSession} initialError={startError} oidc={oidc} />;
  return (
    <Shell
      session={session}
      onSignOut={() => {
        signOut();
        setSession(undefined);
      }}
    />
  );
}

const root = document.getElementById("app");
if (root) {
  root.textContent = ""; // the page's "Loading…" line
  render(<App />, root);
}
