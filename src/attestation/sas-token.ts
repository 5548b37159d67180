// SharedAccessSignature tokens: parsing, signing and checking (service-api.md §9.2,
// device-api.md §4.1). Pure: no I/O, no clock (callers pass `now`).
import { createHmac, timingSafeEqual } from "node:crypto";

export interface SasToken {
  /** The resource exactly as it appears in the token: the string to sign starts with it. */
  sr: string;
  /** The signature, URL-decoded (base64). */
  sig: string;
  /** Expiry, Unix seconds. */
  se: number;
  /** The policy name; absent in device tokens that carry none. */
  skn?: string;
}

const PREFIX = "sharedaccesssignature ";

/** Parse `SharedAccessSignature sr=…&sig=…&se=…&skn=…`, fields in any order. */
export function parseSasToken(text: string): SasToken | undefined {
  if (text.slice(0, PREFIX.length).toLowerCase() !== PREFIX) return undefined;
  const fields = new Map<string, string>();
  for (const pair of text.slice(PREFIX.length).trim().split("&")) {
    const eq = pair.indexOf("=");
    if (eq <= 0) return undefined;
    fields.set(pair.slice(0, eq).toLowerCase(), pair.slice(eq + 1));
  }
  const sr = fields.get("sr");
  const sigEncoded = fields.get("sig");
  const seText = fields.get("se");
  if (!sr || !sigEncoded || !seText || !/^\d{1,12}$/.test(seText)) return undefined;
  let sig: string;
  try {
    sig = decodeURIComponent(sigEncoded);
  } catch {
    return undefined;
  }
  const skn = fields.get("skn");
  return { sr, sig, se: Number(seText), ...(skn ? { skn: safeDecode(skn) } : {}) };
}

const safeDecode = (s: string): string => {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
};

/** The resource named by `sr` as the signer wrote it: URL-decoded, without a scheme. */
export const tokenResourceAsSent = (token: SasToken): string =>
  // Event Hubs clients write `sb://{host}/{entity}`; others `https://` or no scheme.
  safeDecode(token.sr).replace(/^[a-z][a-z0-9+.-]*:\/\//i, "");

/** The resource named by `sr`: URL-decoded, lower-cased, without a scheme (for comparing scopes). */
export const tokenResource = (token: SasToken): string => tokenResourceAsSent(token).toLowerCase();

/** base64(HMAC-SHA256(base64decode(key), sr + "\n" + se)). */
export const sign = (keyBase64: string, sr: string, se: number): string =>
  createHmac("sha256", Buffer.from(keyBase64, "base64")).update(`${sr}\n${se}`).digest("base64");

/** Build a token the way the Azure SDKs do (used by tests, the CLI and the hub client). */
export function createSasToken(keyBase64: string, sr: string, se: number, skn?: string): string {
  const sig = encodeURIComponent(sign(keyBase64, sr, se));
  return `SharedAccessSignature sr=${sr}&sig=${sig}&se=${se}${skn ? `&skn=${encodeURIComponent(skn)}` : ""}`;
}

/**
 * Which spellings of `sr` to check a signature over: all of them, only `sr` as sent (the one
 * nearly every token is signed over), or all but that one. Callers trying many keys try them all
 * "asSent" first and then "others", so that no MAC is computed twice.
 */
export type SrSpellings = "all" | "asSent" | "others";

/**
 * Does any of `keys` sign the token? Clients differ in how they encode `sr`, so the MAC is
 * checked over each plausible spelling (service-api.md §9.2, robust check). Constant time.
 */
export function signatureMatches(
  token: SasToken,
  keysBase64: readonly string[],
  spellings: SrSpellings = "all",
  /** The key's text is the HMAC key, as Event Hubs and Service Bus sign, rather than its base64 bytes. */
  keyAsText = false,
): boolean {
  const given = Buffer.from(token.sig, "base64");
  if (given.length !== 32) return false;
  // The spelling as sent signs almost every token: try it first, the others only if it fails.
  // Which spelling matched is no secret (the caller chose it); each comparison is constant-time.
  if (spellings !== "others" && macMatches(token.sr, token.se, keysBase64, given, keyAsText)) return true;
  if (spellings === "asSent") return false;
  const decoded = safeDecode(token.sr);
  const others = new Set([
    decoded,
    encodeURIComponent(decoded),
    decoded.toLowerCase(),
    encodeURIComponent(decoded.toLowerCase()),
  ]);
  others.delete(token.sr);
  for (const sr of others) if (macMatches(sr, token.se, keysBase64, given, keyAsText)) return true;
  return false;
}

function macMatches(sr: string, se: number, keys: readonly string[], given: Buffer, keyAsText: boolean): boolean {
  let ok = false;
  for (const key of keys) {
    const mac = createHmac("sha256", Buffer.from(key, keyAsText ? "utf8" : "base64"))
      .update(`${sr}\n${se}`)
      .digest();
    ok = timingSafeEqual(mac, given) || ok;
  }
  return ok;
}

/** Tokens are accepted up to this long after `se`, for clock skew between hosts. */
export const CLOCK_SKEW_SECONDS = 300;

export const isExpired = (token: SasToken, nowSeconds: number): boolean => token.se + CLOCK_SKEW_SECONDS < nowSeconds;

/** `45 s`, `12 min`, `3 h 5 min`, `2 days`: how long, for a person. */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 120) return `${s} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 2 * 86400) return `${Math.floor(s / 3600)} h${s % 3600 >= 60 ? ` ${Math.floor((s % 3600) / 60)} min` : ""}`;
  return `${Math.round(s / 86400)} days`;
}

/**
 * Why an expired token is refused, said so that a wrong clock is recognised: a token made just
 * now that already expired long ago means the signer's clock is behind (expired tokens otherwise
 * look like wrong keys to a newcomer).
 */
export function expiredReason(token: Pick<SasToken, "se">, nowSeconds: number): string {
  const expiry = new Date(token.se * 1000).toISOString();
  const now = new Date(nowSeconds * 1000).toISOString();
  return `the SAS token expired at ${expiry}, ${duration(nowSeconds - token.se)} before this server's clock (${now}); if it was signed just now, the signer's clock is wrong: set it (NTP) and sign a new token`;
}
