// A local OpenID Connect issuer for the tests: its discovery document and JWKS over plain HTTP on
// loopback, and tokens signed with its current key (rotate() adds a new one). For the console's
// sign-in it also plays the login page: /authorize answers at once for whoever signInAs() names
// (no form: a test double of Azure AD's login), and /token trades the code when the PKCE
// verifier matches, with CORS as a browser needs it.
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from "jose";

export interface TestIssuer {
  url: string;
  /** How many times the JWKS was fetched. */
  jwksFetches(): number;
  /** A token for `claims` (sub, aud, roles, …), signed with the current key, valid an hour unless `exp` says. */
  sign(claims: JWTPayload, options?: { key?: "current" | "stranger" }): Promise<string>;
  /** A new signing key, published beside the old one. */
  rotate(): Promise<void>;
  /** The claims of the person the login page signs in from now on; undefined: it refuses. */
  signInAs(claims: JWTPayload | undefined): void;
  close(): Promise<void>;
}

interface Key {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

async function newKey(kid: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair("RS256");
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" } };
}

export async function startIssuer(): Promise<TestIssuer> {
  const keys: Key[] = [await newKey("key-1")];
  const stranger = await newKey("stranger");
  let fetches = 0;
  let url = "";
  let person: JWTPayload | undefined;
  const codes = new Map<string, { challenge: string; clientId: string; redirectUri: string; claims: JWTPayload }>();
  const sign = async (claims: JWTPayload, key: Key) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ iat: now, exp: now + 3600, iss: url, ...claims })
      .setProtectedHeader({ alg: "RS256", kid: key.kid, typ: "JWT" })
      .sign(key.privateKey);
  };
  const server: Server = createServer((req, res) => {
    res.setHeader("content-type", "application/json");
    res.setHeader("access-control-allow-origin", "*");
    const path = (req.url ?? "").split("?")[0];
    if (req.method === "OPTIONS") {
      res.writeHead(204, {
        "access-control-allow-methods": "GET, POST",
        "access-control-allow-headers": "content-type",
      });
      res.end();
    } else if (path === "/.well-known/openid-configuration") {
      res.end(
        JSON.stringify({
          issuer: url,
          jwks_uri: `${url}/keys`,
          authorization_endpoint: `${url}/authorize`,
          token_endpoint: `${url}/token`,
        }),
      );
    } else if (path === "/authorize") {
      const q = new URL(req.url ?? "", url).searchParams;
      const back = new URL(q.get("redirect_uri") ?? "");
      back.searchParams.set("state", q.get("state") ?? "");
      if (!person || q.get("code_challenge_method") !== "S256") {
        back.searchParams.set("error", "access_denied");
        back.searchParams.set("error_description", person ? "PKCE with S256 is required" : "the user declined");
      } else {
        const code = randomBytes(16).toString("hex");
        codes.set(code, {
          challenge: q.get("code_challenge") ?? "",
          clientId: q.get("client_id") ?? "",
          redirectUri: q.get("redirect_uri") ?? "",
          claims: person,
        });
        back.searchParams.set("code", code);
      }
      res.writeHead(302, { location: back.toString() });
      res.end();
    } else if (path === "/token" && req.method === "POST") {
      let body = "";
      req.on("data", (c: Buffer) => {
        body += c.toString("utf8");
      });
      req.on("end", () => {
        const form = new URLSearchParams(body);
        const grant = codes.get(form.get("code") ?? "");
        codes.delete(form.get("code") ?? "");
        const verifier = form.get("code_verifier") ?? "";
        const challenge = createHash("sha256").update(verifier).digest("base64url");
        if (
          !grant ||
          grant.challenge !== challenge ||
          grant.clientId !== form.get("client_id") ||
          grant.redirectUri !== form.get("redirect_uri")
        ) {
          res.statusCode = 400;
          res.end(JSON.stringify({ error: "invalid_grant", error_description: "the code or its verifier is wrong" }));
          return;
        }
        void sign(grant.claims, keys.at(-1) as Key).then((token) =>
          res.end(JSON.stringify({ access_token: token, token_type: "Bearer", expires_in: 3600 })),
        );
      });
    } else if (path === "/keys") {
      fetches++;
      res.end(JSON.stringify({ keys: keys.map((k) => k.jwk) }));
    } else {
      res.statusCode = 404;
      res.end("{}");
    }
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    jwksFetches: () => fetches,
    sign: (claims, options = {}) => sign(claims, options.key === "stranger" ? stranger : (keys.at(-1) as Key)),
    signInAs(claims) {
      person = claims;
    },
    async rotate() {
      keys.push(await newKey(`key-${keys.length + 1}`));
    },
    async close() {
      server.close();
      server.closeAllConnections();
      await once(server, "close");
    },
  };
}
