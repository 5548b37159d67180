// The signed-in session: a connection string or an issuer's access token, in the tab's
// sessionStorage only, so it goes when the tab closes and never reaches the server except as
// signatures and bearer tokens.
import { createContext } from "preact";
import { useContext } from "preact/hooks";
import { Api, bearerCredentials, readConnectionString, sasCredentials, type WhoAmI } from "./api.js";

const KEY = "provisio.signIn";

type Saved = { kind: "connectionString"; value: string } | { kind: "bearer"; value: string };

export interface Session {
  api: Api;
  who: WhoAmI;
  /** Management paths of the signed-in service: `/provisioningServices/{name}`. */
  servicePath: string;
}

export const SessionContext = createContext<Session | undefined>(undefined);

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error("no session");
  return s;
}

async function open(saved: Saved): Promise<Session> {
  const api = new Api(
    saved.kind === "bearer" ? bearerCredentials(saved.value) : sasCredentials(readConnectionString(saved.value)),
  );
  const who = await api.whoAmI();
  sessionStorage.setItem(KEY, JSON.stringify(saved));
  return { api, who, servicePath: `/provisioningServices/${encodeURIComponent(who.service.name)}` };
}

/** Signs in with a pasted connection string; throws with a message a person can act on. */
export const signIn = (connectionString: string): Promise<Session> =>
  open({ kind: "connectionString", value: connectionString.trim() });

/** Signs in with an issuer's access token. */
export const signInWithToken = (accessToken: string): Promise<Session> => open({ kind: "bearer", value: accessToken });

/** The session this tab had, if any. */
export function restore(): Promise<Session> | undefined {
  const text = sessionStorage.getItem(KEY);
  return text ? open(JSON.parse(text) as Saved) : undefined;
}

export function signOut(): void {
  sessionStorage.removeItem(KEY);
}
