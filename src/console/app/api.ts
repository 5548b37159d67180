// The console's client of the service and management APIs: same origin, every call signed with
// the signed-in policy's SAS token, DPS error bodies turned into messages a person can act on.
import { parseConnectionString, type SharedAccessConnectionString } from "../../domain/connection-string.js";
import type { Right } from "../../domain/rights.js";
import { isBase64Key, sasToken } from "./sas.js";

export const SERVICE_API_VERSION = "2021-10-01";
export const MANAGEMENT_API_VERSION = "2022-02-05";
const TOKEN_LIFETIME_SECONDS = 3600;

/** A refusal, with what DPS said and what to do about it. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly errorCode?: number,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** The connection string a person pasted, or why it cannot be one. */
export function readConnectionString(text: string): SharedAccessConnectionString {
  const trimmed = text.trim();
  if (trimmed === "")
    throw new Error("Paste a service connection string: HostName=…;SharedAccessKeyName=…;SharedAccessKey=…");
  const cs = parseConnectionString(trimmed);
  if (!cs) {
    throw new Error(
      "That is not a service connection string. It looks like HostName=…;SharedAccessKeyName=…;SharedAccessKey=… (provisio.json's serviceConnectionString, or `provisio connection-string show`).",
    );
  }
  if (!isBase64Key(cs.key)) {
    throw new Error("SharedAccessKey is not a whole base64 key; copy the connection string again, all of it.");
  }
  return cs;
}

/** Rights of DPS's shared access policies (management.md §3): the domain's one list. */
export type { Right } from "../../domain/rights.js";

export interface WhoAmI {
  service: { name: string; idScope: string; hostName: string };
  caller: { kind: "policy" | "token"; name: string; displayName?: string; rights: Right[] };
}

export interface Reply<T> {
  status: number;
  body: T;
  headers: Headers;
}

export interface Page<T> {
  items: T[];
  /** The continuation token of the next page; absent on the last. */
  next?: string;
}

export interface CallOptions {
  body?: unknown;
  headers?: Record<string, string>;
  query?: Record<string, string | undefined>;
}

/** The message of a DPS or ARM error body, or of a status alone. */
export function errorMessage(status: number, body: unknown): { message: string; errorCode?: number } {
  if (body && typeof body === "object") {
    const b = body as { message?: unknown; errorCode?: unknown; error?: { message?: unknown; code?: unknown } };
    const code = typeof b.errorCode === "number" ? b.errorCode : undefined;
    const message = typeof b.message === "string" ? b.message : b.error?.message;
    if (typeof message === "string") return { message, ...(code !== undefined ? { errorCode: code } : {}) };
  }
  return { message: `The service answered ${status} without saying why.` };
}

/** What to do about a refusal, added to its message. */
export function advice(status: number): string {
  if (status === 401) return "Sign in again with a policy that has the right this needs.";
  if (status === 412) return "Someone changed it since it was read: reload and make the change again.";
  if (status === 429) return "The service is throttling; wait a few seconds and try again.";
  if (status >= 500) return "The service failed; its log says why.";
  return "";
}

/** How each call is authorized: a policy's SAS token, or an issuer's bearer token. */
export interface Credentials {
  authorization(nowSeconds: number): Promise<string>;
}

/** SAS tokens of a shared access policy, signed here, each used for up to an hour. */
export function sasCredentials(cs: SharedAccessConnectionString): Credentials {
  let token: { value: string; until: number } | undefined;
  return {
    async authorization(nowSeconds) {
      if (!token || token.until - 300 < nowSeconds) {
        const se = nowSeconds + TOKEN_LIFETIME_SECONDS;
        token = { value: await sasToken(cs.hostName.split(":")[0] ?? cs.hostName, cs.keyName, cs.key, se), until: se };
      }
      return token.value;
    },
  };
}

/** An OpenID Connect issuer's access token (console sign-in through the issuer). */
export const bearerCredentials = (accessToken: string): Credentials => ({
  authorization: async () => `Bearer ${accessToken}`,
});

export class Api {
  constructor(
    private readonly credentials: Credentials,
    /** Where the APIs are: the console's own origin. */
    private readonly origin = "",
    private readonly fetcher: typeof fetch = (input, init) => fetch(input, init),
    private readonly now = () => Date.now(),
  ) {}

  async call<T>(method: string, path: string, o: CallOptions = {}): Promise<Reply<T>> {
    const isManagement = path.toLowerCase().startsWith("/provisioningservices");
    const params = new URLSearchParams({ "api-version": isManagement ? MANAGEMENT_API_VERSION : SERVICE_API_VERSION });
    for (const [k, v] of Object.entries(o.query ?? {})) if (v !== undefined && v !== "") params.set(k, v);
    const authorization = await this.credentials.authorization(Math.floor(this.now() / 1000));
    const headers: Record<string, string> = { Authorization: authorization, ...o.headers };
    if (o.body !== undefined) headers["Content-Type"] = "application/json; charset=utf-8";
    let res: Response;
    try {
      res = await this.fetcher(`${this.origin}${path}?${params}`, {
        method,
        headers,
        ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
      });
    } catch {
      throw new ApiError(0, "The service did not answer. Is `provisio serve` still running?");
    }
    const text = await res.text();
    let body: unknown;
    try {
      body = text === "" ? undefined : JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (!res.ok) {
      const { message, errorCode } = errorMessage(res.status, body);
      const hint = advice(res.status);
      throw new ApiError(res.status, hint ? `${message} ${hint}` : message, errorCode);
    }
    return { status: res.status, body: body as T, headers: res.headers };
  }

  get<T>(path: string, query?: Record<string, string | undefined>): Promise<T> {
    return this.call<T>("GET", path, query ? { query } : {}).then((r) => r.body);
  }

  /** One page of a DPS query (service-api.md §3.5): `x-ms-max-item-count` and `x-ms-continuation`. */
  async page<T>(path: string, top: number, continuation?: string, prefix?: string): Promise<Page<T>> {
    const headers: Record<string, string> = { "x-ms-max-item-count": String(top) };
    if (continuation) headers["x-ms-continuation"] = continuation;
    const r = await this.call<T[]>("POST", path, { body: { query: "*" }, headers, query: { prefix } });
    const next = r.headers.get("x-ms-continuation") ?? undefined;
    return { items: r.body ?? [], ...(next ? { next } : {}) };
  }

  whoAmI(): Promise<WhoAmI> {
    return this.get<WhoAmI>("/caller");
  }
}

export const can = (who: WhoAmI | undefined, right: Right): boolean => who?.caller.rights.includes(right) ?? false;
