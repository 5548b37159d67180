// TLS cipher suite names both ways: IANA's (`TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`, what DPS's
// documentation and device TLS stacks print) and OpenSSL's (`ECDHE-RSA-AES128-GCM-SHA256`, what
// Node's `ciphers` option takes). TLS 1.3 suites have one name in both.

const KEX: Record<string, string> = { ECDHE_RSA: "ECDHE-RSA", ECDHE_ECDSA: "ECDHE-ECDSA", DHE_RSA: "DHE-RSA", RSA: "" };

/**
 * The OpenSSL name of an IANA suite name, or the input unchanged when it is not one (an OpenSSL
 * name already, or a TLS 1.3 suite). Covers the AES and ChaCha20 suites of TLS 1.2.
 */
export function opensslCipherName(name: string): string {
  const m =
    /^TLS_(ECDHE_RSA|ECDHE_ECDSA|DHE_RSA|RSA)_WITH_(AES_(128|256)_(GCM|CBC)|CHACHA20_POLY1305)_(SHA|SHA256|SHA384)$/.exec(
      name.toUpperCase(),
    );
  if (!m) return name;
  const [, kex = "", cipher, bits, mode, mac] = m;
  const prefix = KEX[kex] ? `${KEX[kex]}-` : "";
  if (cipher === "CHACHA20_POLY1305") return `${prefix}CHACHA20-POLY1305`;
  // GCM suites name their PRF hash; CBC ones their MAC, SHA-1 written bare (`AES128-SHA`).
  return mode === "GCM" ? `${prefix}AES${bits}-GCM-${mac}` : `${prefix}AES${bits}-${mac}`;
}

/** Node's `ciphers` string for a list of names of either kind. */
export const cipherList = (names: string[]): string => names.map(opensslCipherName).join(":");
