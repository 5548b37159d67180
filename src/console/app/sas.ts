// SAS tokens signed in the browser with WebCrypto (service-api.md §9.2): the console keeps the
// policy key in the tab's session and signs each call itself, as every other client does.

const encoder = new TextEncoder();

function base64ToBytes(b64: string): Uint8Array<ArrayBuffer> {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function bytesToBase64(bytes: ArrayBuffer): string {
  let bin = "";
  for (const b of new Uint8Array(bytes)) bin += String.fromCharCode(b);
  return btoa(bin);
}

/** Is `key` base64 a HMAC key can be made from? (A pasted key is often cut short.) */
export function isBase64Key(key: string): boolean {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(key) || key.length % 4 !== 0) return false;
  return base64ToBytes(key).length >= 16;
}

/** base64(HMAC-SHA256(key, sr + "\n" + se)), as Azure's SDKs sign. */
export async function sign(keyBase64: string, sr: string, se: number): Promise<string> {
  const key = await crypto.subtle.importKey("raw", base64ToBytes(keyBase64), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  return bytesToBase64(await crypto.subtle.sign("HMAC", key, encoder.encode(`${sr}\n${se}`)));
}

/** `SharedAccessSignature sr=…&sig=…&se=…&skn=…` for `resource` (a host name), valid until `se`. */
export async function sasToken(resource: string, keyName: string, keyBase64: string, se: number): Promise<string> {
  const sr = encodeURIComponent(resource.toLowerCase());
  const sig = encodeURIComponent(await sign(keyBase64, sr, se));
  return `SharedAccessSignature sr=${sr}&sig=${sig}&se=${se}&skn=${encodeURIComponent(keyName)}`;
}
