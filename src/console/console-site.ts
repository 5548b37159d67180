// Serves the web console on the HTTPS listener: `/` for a browser asking for HTML, and its
// script and stylesheet under `/console/`. Every API path is unchanged; the console itself
// calls the same APIs as every other client, signed in the browser (no session on the server).
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { RequestPath } from "../http/request-path.js";

/** Where `npm run build` writes the console (src/console/build-console.ts). */
export const CONSOLE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "../../console-app");

const FILES: Record<string, string> = {
  "": "index.html",
  "console/app.js": "app.js",
  "console/app.js.map": "app.js.map",
  "console/app.css": "app.css",
  "console/app.css.map": "app.css.map",
  "console/config.json": "",
};

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  map: "application/json; charset=utf-8",
};

/**
 * Scripts and styles from this origin only; API calls to this origin and to built-in hubs
 * (their own host names, https); no framing.
 */
const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' https:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/** What the page needs to know before sign-in: how it may sign in. Public: no secret in it. */
export interface ConsoleConfig {
  /** Sign-in through an OpenID Connect issuer (authorization code with PKCE), when configured. */
  oidc?: { issuer: string; clientId: string; scope: string };
}

const NOT_BUILT = `<!doctype html><meta charset="utf-8"><title>Provisio</title>
<p>The web console has not been built. Run <code>npm run build</code> (or <code>npm ci</code>) and reload.</p>`;

/** A browser's request for the console: GET or HEAD of `/` with HTML acceptable, or of a console file. */
export function isConsoleRequest(req: IncomingMessage, path: RequestPath): boolean {
  if (req.method !== "GET" && req.method !== "HEAD") return false;
  const joined = path.segments.join("/");
  if (joined === "") return (req.headers.accept ?? "").includes("text/html");
  return joined in FILES;
}

export class ConsoleSite {
  readonly #cache = new Map<string, { content: Buffer; etag: string }>();
  readonly #config: Buffer;
  readonly #csp: string;

  constructor(
    config: ConsoleConfig = {},
    private readonly dir = CONSOLE_DIR,
  ) {
    this.#config = Buffer.from(JSON.stringify(config));
    // The issuer is called from the page (discovery and token endpoints), wherever it is.
    const issuer = config.oidc ? ` ${new URL(config.oidc.issuer).origin}` : "";
    this.#csp = CONTENT_SECURITY_POLICY.replace("connect-src 'self' https:", `connect-src 'self' https:${issuer}`);
  }

  #read(file: string): { content: Buffer; etag: string } | null {
    if (!this.#cache.has(file)) {
      try {
        const content = readFileSync(join(this.dir, file));
        this.#cache.set(file, {
          content,
          etag: `"${createHash("sha256").update(content).digest("base64url").slice(0, 22)}"`,
        });
      } catch {
        // Not built: asked again next time, so a build while serving is picked up.
        return null;
      }
    }
    return this.#cache.get(file) ?? null;
  }

  serve(req: IncomingMessage, res: ServerResponse, path: RequestPath): void {
    const security = {
      "Content-Security-Policy": this.#csp,
      "X-Content-Type-Options": "nosniff",
      "Referrer-Policy": "no-referrer",
    };
    const joined = path.segments.join("/");
    if (joined === "console/config.json") {
      res.writeHead(200, { "Content-Type": TYPES.map, "Cache-Control": "no-store", ...security });
      res.end(req.method === "HEAD" ? undefined : this.#config);
      return;
    }
    const file = FILES[joined] ?? "index.html";
    const found = this.#read(file);
    if (!found) {
      res.writeHead(file === "index.html" ? 503 : 404, { "Content-Type": TYPES.html, ...security });
      res.end(req.method === "HEAD" ? undefined : NOT_BUILT);
      return;
    }
    const { content, etag } = found;
    // The names do not change between builds: browsers revalidate every time, by etag.
    const cache = { "Cache-Control": "no-cache", ETag: etag, ...security };
    if (req.headers["if-none-match"] === etag) {
      res.writeHead(304, cache);
      res.end();
      return;
    }
    res.writeHead(200, {
      "Content-Type": TYPES[file.split(".").pop() ?? ""] ?? "application/octet-stream",
      "Content-Length": content.length,
      ...cache,
    });
    res.end(req.method === "HEAD" ? undefined : content);
  }
}
