// A local OpenID Connect issuer for the tests: its discovery document and JWKS over plain HTTP on
// loopback, and tokens signed with its current key (rotate() adds a new one).
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
  const server: Server = createServer((req, res) => {
    res.setHeader("content-type", "application/json");
    if (req.url === "/.well-known/openid-configuration") {
      res.end(JSON.stringify({ issuer: url, jwks_uri: `${url}/keys` }));
    } else if (req.url === "/keys") {
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
    async sign(claims, options = {}) {
      const key = options.key === "stranger" ? stranger : (keys.at(-1) as Key);
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ iat: now, exp: now + 3600, iss: url, ...claims })
        .setProtectedHeader({ alg: "RS256", kid: key.kid, typ: "JWT" })
        .sign(key.privateKey);
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
