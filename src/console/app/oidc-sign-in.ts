// Sign-in through the OpenID Connect issuer the server trusts (--oidc-issuer with
// --oidc-console-client-id): off to the issuer's login page, back with a code, traded here for
// an access token that every API call then carries as a bearer token.
import { ApiError } from "./api.js";
import { authorizeUrl, codeChallenge, type OidcClient, randomToken, redirectResult, tokenRequest } from "./pkce.js";

export interface OidcConfig {
  issuer: string;
  clientId: string;
  scope: string;
}

const PENDING = "provisio.oidcPending";

const client = (c: OidcConfig): OidcClient => ({
  clientId: c.clientId,
  scope: c.scope,
  redirectUri: `${location.origin}/`,
});

async function discover(issuer: string): Promise<{ authorization_endpoint: string; token_endpoint: string }> {
  const url = `${issuer.replace(/\/$/, "")}/.well-known/openid-configuration`;
  let res: Response;
  try {
    res = await fetch(url);
  } catch {
    throw new Error(`The issuer ${issuer} did not answer (or does not allow this page to read ${url}).`);
  }
  const doc = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (typeof doc.authorization_endpoint !== "string" || typeof doc.token_endpoint !== "string") {
    throw new Error(`The issuer's discovery document (${url}) has no authorization or token endpoint.`);
  }
  return { authorization_endpoint: doc.authorization_endpoint, token_endpoint: doc.token_endpoint };
}

/** Leaves for the issuer's login page. */
export async function startIssuerSignIn(c: OidcConfig): Promise<void> {
  const { authorization_endpoint } = await discover(c.issuer);
  const verifier = randomToken();
  const state = randomToken();
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state }));
  location.assign(authorizeUrl(authorization_endpoint, client(c), state, await codeChallenge(verifier)));
}

/** On the way back from the issuer: the access token, or undefined when this load is not a return. */
export async function finishIssuerSignIn(c: OidcConfig): Promise<string | undefined> {
  const query = new URLSearchParams(location.search);
  const pending = JSON.parse(sessionStorage.getItem(PENDING) ?? "{}") as { verifier?: string; state?: string };
  const result = redirectResult(query, pending.state);
  if (!result) return undefined;
  sessionStorage.removeItem(PENDING);
  history.replaceState(null, "", `${location.pathname}${location.hash}`); // the code is single-use
  if ("error" in result) throw new Error(result.error);
  const { token_endpoint } = await discover(c.issuer);
  const res = await fetch(token_endpoint, {
    method: "POST",
    body: tokenRequest(client(c), result.code, pending.verifier ?? ""),
  });
  const body = (await res.json().catch(() => ({}))) as {
    access_token?: unknown;
    error?: unknown;
    error_description?: unknown;
  };
  if (!res.ok || typeof body.access_token !== "string") {
    const why = typeof body.error_description === "string" ? body.error_description : String(body.error ?? res.status);
    throw new ApiError(res.status, `The issuer would not give a token: ${why}. Sign in again.`);
  }
  return body.access_token;
}
