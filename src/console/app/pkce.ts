// Authorization code with PKCE (RFC 7636), the browser's half of signing in through an OpenID
// Connect issuer: a random verifier, its S256 challenge, the authorize URL, the token request.
// Pure but for randomness and hashing (WebCrypto).

const base64Url = (bytes: Uint8Array): string => {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
};

/** 32 random bytes, base64url: a verifier or a state. */
export const randomToken = (): string => base64Url(crypto.getRandomValues(new Uint8Array(32)));

export async function codeChallenge(verifier: string): Promise<string> {
  return base64Url(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier))));
}

export interface OidcClient {
  clientId: string;
  scope: string;
  /** The console's own URL: where the issuer sends the browser back. */
  redirectUri: string;
}

export function authorizeUrl(endpoint: string, c: OidcClient, state: string, challenge: string): string {
  const url = new URL(endpoint);
  url.searchParams.set("response_type", "code");
  url.searchParams.set("client_id", c.clientId);
  url.searchParams.set("redirect_uri", c.redirectUri);
  url.searchParams.set("scope", c.scope);
  url.searchParams.set("state", state);
  url.searchParams.set("code_challenge", challenge);
  url.searchParams.set("code_challenge_method", "S256");
  return url.toString();
}

/** The form body that trades the code for tokens at the token endpoint. */
export const tokenRequest = (c: OidcClient, code: string, verifier: string): URLSearchParams =>
  new URLSearchParams({
    grant_type: "authorization_code",
    code,
    redirect_uri: c.redirectUri,
    client_id: c.clientId,
    code_verifier: verifier,
  });

/** What came back on the redirect: a code, an error the issuer named, or nothing of ours. */
export function redirectResult(
  query: URLSearchParams,
  expectedState: string | undefined,
): { code: string } | { error: string } | undefined {
  const error = query.get("error");
  const code = query.get("code");
  if (!error && !code) return undefined;
  if (!expectedState || query.get("state") !== expectedState) {
    return { error: "The sign-in answer does not belong to this tab (its state does not match). Sign in again." };
  }
  if (error) return { error: `The issuer refused the sign-in: ${query.get("error_description") ?? error}.` };
  return { code: code ?? "" };
}
