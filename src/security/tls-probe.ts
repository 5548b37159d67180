// What a given client would negotiate with a listener (issue 20 "TLS", troubleshooting): one TLS
// handshake with the client's versions, suites and signature algorithms, reported whole — the
// protocol, the suite, the certificate and chain served, whether they verify — or, when it
// fails, why and what to try.
import { X509Certificate } from "node:crypto";
import tls from "node:tls";

export interface ProbeOptions {
  address: string;
  port: number;
  /** The host name the client asks for (SNI) and checks the certificate against. */
  servername: string;
  /** The CA the client trusts; none: Node's bundled CAs. */
  ca?: Buffer;
  minVersion?: tls.SecureVersion;
  maxVersion?: tls.SecureVersion;
  /** OpenSSL cipher list (cipher-names.ts turns IANA names into it). */
  ciphers?: string;
  sigalgs?: string;
  timeoutMs?: number;
}

export interface ProbedCertificate {
  subject: string;
  issuer: string;
  subjectAltName: string;
  key: string;
  serialNumber: string;
  validFrom: string;
  validTo: string;
  fingerprint256: string;
}

export interface ProbeReport {
  target: { address: string; port: number; servername: string };
  ok: boolean;
  protocol?: string;
  cipher?: { name: string; openssl: string };
  certificate?: ProbedCertificate;
  /** The leaf's issuers up the path the client built (empty when it built none: untrusted). */
  chain?: { subject: string; issuer: string }[];
  trusted?: boolean;
  trustError?: string;
  hostnameMatches?: boolean;
  hostnameError?: string;
  error?: string;
  /** What to try next, for a failed or untrusted handshake. */
  hint?: string;
}

const oneLine = (dn: string): string => dn.split("\n").join(", ");

function describeKey(cert: X509Certificate): string {
  const key = cert.publicKey;
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === "rsa") return `RSA ${d.modulusLength ?? "?"}`;
  if (key.asymmetricKeyType === "ec") return `ECDSA ${d.namedCurve ?? "?"}`;
  return key.asymmetricKeyType ?? "unknown";
}

function certificateOf(cert: X509Certificate): ProbedCertificate {
  return {
    subject: oneLine(cert.subject),
    issuer: oneLine(cert.issuer),
    subjectAltName: cert.subjectAltName ?? "",
    key: describeKey(cert),
    serialNumber: cert.serialNumber,
    validFrom: new Date(cert.validFrom).toISOString(),
    validTo: new Date(cert.validTo).toISOString(),
    fingerprint256: cert.fingerprint256,
  };
}

/** The leaf's issuers up the verified path (issuerCertificate links). */
function issuerPath(leaf: tls.DetailedPeerCertificate): { subject: string; issuer: string }[] {
  const out: { subject: string; issuer: string }[] = [];
  let at = leaf.issuerCertificate;
  const seen = new Set([leaf.fingerprint256]);
  while (at && !seen.has(at.fingerprint256)) {
    seen.add(at.fingerprint256);
    const cert = new X509Certificate(at.raw);
    out.push({ subject: oneLine(cert.subject), issuer: oneLine(cert.issuer) });
    at = at.issuerCertificate;
  }
  return out;
}

/** What a failed handshake most likely means for Provisio's listeners. */
export function hintFor(error: string): string | undefined {
  if (/ECONNREFUSED/.test(error))
    return "nothing listens there: is provisio serve running, and is this its port (provisio.json's ports)?";
  if (/PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL|wrong version number/i.test(error)) {
    return "no TLS version in common: Provisio takes TLS 1.2 and 1.3 (1.3 only with PROVISIO_MIN_TLS_VERSION=1.3), never 1.0 or 1.1";
  }
  if (/HANDSHAKE_FAILURE|NO_SHARED_CIPHER|no ciphers available|NO_SUITABLE_SIGNATURE/i.test(error)) {
    return "no cipher suite or signature algorithm in common: Provisio offers ECDHE with AES-GCM, AES-CBC and ChaCha20 for both its RSA and ECDSA certificates";
  }
  if (/timed out/.test(error)) return "the server did not answer the handshake: a firewall, or a port that is not TLS?";
  return undefined;
}

function trustHint(error: string): string {
  if (/SELF_SIGNED|UNABLE_TO_GET_ISSUER|UNABLE_TO_VERIFY_LEAF/i.test(error)) {
    return "the client does not trust the CA: give it provisio.json's caFile (or the --tls-ca of your own certificates)";
  }
  if (/CERT_HAS_EXPIRED/.test(error))
    return "the server certificate has expired: renew it (development ones are reissued at start)";
  return "see the certificate above";
}

export function probeTls(o: ProbeOptions): Promise<ProbeReport> {
  const target = { address: o.address, port: o.port, servername: o.servername };
  return new Promise((resolve) => {
    const socket = tls.connect({
      host: o.address,
      port: o.port,
      servername: o.servername,
      ...(o.ca ? { ca: o.ca } : {}),
      ...(o.minVersion ? { minVersion: o.minVersion } : {}),
      ...(o.maxVersion ? { maxVersion: o.maxVersion } : {}),
      ...(o.ciphers ? { ciphers: o.ciphers } : {}),
      ...(o.sigalgs ? { sigalgs: o.sigalgs } : {}),
      // Verified below, so an untrusted certificate is still shown.
      rejectUnauthorized: false,
      checkServerIdentity: () => undefined,
    });
    const timer = setTimeout(
      () => socket.destroy(new Error(`TLS handshake timed out after ${o.timeoutMs ?? 10_000} ms`)),
      o.timeoutMs ?? 10_000,
    );
    socket.once("secureConnect", () => {
      clearTimeout(timer);
      const leaf = socket.getPeerCertificate(true);
      const x509 = socket.getPeerX509Certificate();
      const cipher = socket.getCipher();
      const hostError = tls.checkServerIdentity(o.servername, leaf);
      const trustError = socket.authorized ? undefined : String(socket.authorizationError ?? "not trusted");
      const report: ProbeReport = {
        target,
        ok: socket.authorized && !hostError,
        protocol: socket.getProtocol() ?? "",
        cipher: { name: cipher.standardName, openssl: cipher.name },
        ...(x509 ? { certificate: certificateOf(x509) } : {}),
        chain: issuerPath(leaf),
        trusted: socket.authorized,
        ...(trustError ? { trustError, hint: trustHint(trustError) } : {}),
        hostnameMatches: !hostError,
        ...(hostError
          ? {
              hostnameError: hostError.message,
              hint: `the certificate does not name '${o.servername}': start provisio serve with --host ${o.servername}, or use a name the certificate has`,
            }
          : {}),
      };
      socket.destroy();
      resolve(report);
    });
    socket.once("error", (err: NodeJS.ErrnoException & { reason?: string }) => {
      clearTimeout(timer);
      // OpenSSL's errors carry a short reason beside a long, source-file-laden message.
      const error = err.code ? `${err.code}: ${err.reason ?? err.message}` : err.message;
      const hint = hintFor(error);
      resolve({ target, ok: false, error, ...(hint ? { hint } : {}) });
    });
  });
}
