// The signed-in session: the connection string lives in the tab's sessionStorage only, so it
// goes when the tab closes and never reaches the server except as signatures.
import { createContext } from "preact";
import { useContext } from "preact/hooks";
import { Api, readConnectionString, type WhoAmI } from "./api.js";

const KEY = "provisio.connectionString";

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

/** Signs in with a pasted connection string; throws with a message a person can act on. */
export async function signIn(text: string): Promise<Session> {
  const api = new Api(readConnectionString(text));
  const who = await api.whoAmI();
  sessionStorage.setItem(KEY, text.trim());
  return { api, who, servicePath: `/provisioningServices/${encodeURIComponent(who.service.name)}` };
}

export function savedConnectionString(): string | undefined {
  return sessionStorage.getItem(KEY) ?? undefined;
}

export function signOut(): void {
  sessionStorage.removeItem(KEY);
}
