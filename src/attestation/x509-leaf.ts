// The device certificate read without an OpenSSL parse. `new X509Certificate(der)` costs ~250 µs on
// OpenSSL 3.0 (its key decoder setup), about a tenth of an X.509 registration; attestation needs
// only the leaf's CN, validity, thumbprints and a signature check. So a leaf in the plain shape
// device certificates have is read here; any other leaf goes to OpenSSL as before.
//
// The rules keep the answers OpenSSL's (x509-attestation.ts decides the same either way):
// - The CN is taken only when it is in the registration-id charset, where node's printed subject
//   (RFC 2253 escaping, UTF-8 conversion) is the bytes themselves.
// - X509_check_issued(issuer, leaf) depends on the leaf only through its issuer Name, its
//   authority key id, its signature algorithm and the validity of its extensions. The extensions
//   allowed are the ones every OpenSSL version decodes alike, in their DER shape, once each;
//   `issuedShape` carries the rest, so one OpenSSL answer per issuer and shape serves every leaf.
// - The signature check is X509_verify's: the outer algorithm equals the inner one, the digest it
//   names over the tbsCertificate bytes, the issuer's key.
import { certificateParts, nameAttributes, readTlv, single, TAGS, type Tlv, validOid } from "./x509-der.js";

export interface LeafFacts {
  /** The subject's (last) CN. */
  commonName: string;
  /** Validity, ms since the epoch. */
  notBefore: number;
  notAfter: number;
  /** What the signature covers, the signature and the digest it uses. */
  tbs: Buffer;
  signature: Buffer;
  digest: string;
  /** The leaf's inputs to X509_check_issued besides the issuer: equal shapes, equal answers. */
  issuedShape: string;
}

/** AlgorithmIdentifier DER (hex) → digest, for the algorithms device certificates are signed with. */
const SIGNATURE_ALGORITHMS = new Map<string, string>([
  ["300a06082a8648ce3d040302", "sha256"], // ecdsa-with-SHA256
  ["300a06082a8648ce3d040303", "sha384"], // ecdsa-with-SHA384
  ["300a06082a8648ce3d040304", "sha512"], // ecdsa-with-SHA512
  ["300d06092a864886f70d01010b0500", "sha256"], // sha256WithRSAEncryption
  ["300d06092a864886f70d01010c0500", "sha384"], // sha384WithRSAEncryption
  ["300d06092a864886f70d01010d0500", "sha512"], // sha512WithRSAEncryption
]);

const COMMON_NAME = "550403"; // 2.5.4.3
/** UTF8String, PrintableString, TeletexString, IA5String: ASCII prints as itself from each. */
const PLAIN_STRING_TAGS = new Set([0x0c, 0x13, 0x14, 0x16]);
const ID_CHARSET = /^[A-Za-z0-9\-._:]+$/;

const BASIC_CONSTRAINTS = "551d13";
const KEY_USAGE = "551d0f";
const EXTENDED_KEY_USAGE = "551d25";
const SUBJECT_KEY_ID = "551d0e";
const AUTHORITY_KEY_ID = "551d23";

/** The leaf's facts when it has the plain shape; `undefined` sends it to OpenSSL. */
export function leafFacts(der: Buffer): LeafFacts | undefined {
  const parts = certificateParts(der);
  if (!parts) return undefined;
  const algorithm = parts.signatureAlgorithm.toString("hex");
  const digest = SIGNATURE_ALGORITHMS.get(algorithm);
  if (!digest || !parts.signatureAlgorithm.equals(parts.tbsSignatureAlgorithm)) return undefined;
  const commonName = plainCommonName(parts.subject);
  if (commonName === undefined) return undefined;
  let authorityKeyId = "";
  const seen = new Set<string>();
  for (const ext of parts.extensions) {
    const oid = ext.oid.toString("hex");
    if (seen.has(oid)) return undefined; // OpenSSL marks duplicates invalid
    seen.add(oid);
    if (!plainExtension(oid, ext.value)) return undefined;
    if (oid === AUTHORITY_KEY_ID) authorityKeyId = ext.value.toString("hex");
  }
  return {
    commonName,
    notBefore: parts.notBefore,
    notAfter: parts.notAfter,
    tbs: parts.tbs,
    signature: parts.signature,
    digest,
    issuedShape: `${algorithm} ${parts.issuer.toString("hex")} ${authorityKeyId}`,
  };
}

function plainCommonName(subject: Buffer): string | undefined {
  const attributes = nameAttributes(subject);
  let cn: string | undefined;
  for (const a of attributes ?? []) {
    if (a.type.toString("hex") !== COMMON_NAME) continue;
    cn = PLAIN_STRING_TAGS.has(a.tag) ? a.value.toString("latin1") : "";
  }
  return cn !== undefined && ID_CHARSET.test(cn) ? cn : undefined;
}

/** The extension is one of the allowed ones, in its DER shape. */
function plainExtension(oid: string, value: Buffer): boolean {
  switch (oid) {
    case BASIC_CONSTRAINTS:
      return plainBasicConstraints(value);
    case KEY_USAGE:
      return plainKeyUsage(value);
    case EXTENDED_KEY_USAGE:
      return plainExtendedKeyUsage(value);
    case SUBJECT_KEY_ID:
      return single(value, TAGS.OCTET_STRING) !== undefined;
    case AUTHORITY_KEY_ID: {
      // keyIdentifier [0] alone; an issuer name and serial ([1], [2]) are left to OpenSSL.
      const seq = single(value, TAGS.SEQUENCE);
      if (!seq) return false;
      if (seq.start === seq.end) return true;
      const keyId = readTlv(value, seq.start, seq.end);
      return keyId?.tag === 0x80 && keyId.end === seq.end;
    }
    default:
      return false;
  }
}

/** cA TRUE or absent; pathLenConstraint only with cA, non-negative (versions differ on the rest). */
function plainBasicConstraints(value: Buffer): boolean {
  const seq = single(value, TAGS.SEQUENCE);
  if (!seq) return false;
  if (seq.start === seq.end) return true;
  const ca = readTlv(value, seq.start, seq.end);
  if (ca?.tag !== TAGS.BOOLEAN || ca.end - ca.start !== 1 || value[ca.start] !== 0xff) return false;
  if (ca.end === seq.end) return true;
  const pathLen = readTlv(value, ca.end, seq.end);
  return pathLen?.tag === TAGS.INTEGER && pathLen.end === seq.end && minimalNonNegative(value, pathLen);
}

function minimalNonNegative(der: Buffer, n: Tlv): boolean {
  const length = n.end - n.start;
  const first = der[n.start] as number;
  return (
    length > 0 && (first & 0x80) === 0 && !(length > 1 && first === 0 && ((der[n.start + 1] as number) & 0x80) === 0)
  );
}

/** One or two octets of bits, not all clear (OpenSSL 3 refuses an empty key usage). */
function plainKeyUsage(value: Buffer): boolean {
  const bits = single(value, TAGS.BIT_STRING);
  if (!bits) return false;
  const octets = bits.end - bits.start - 1;
  const unused = value[bits.start] as number;
  if (octets < 1 || octets > 2 || unused > 7) return false;
  const first = value[bits.start + 1] as number;
  const last = ((value[bits.end - 1] as number) >> unused) << unused; // OpenSSL clears the unused bits
  return (octets === 1 ? last : first | last) !== 0;
}

/** A non-empty sequence of well-formed OIDs. */
function plainExtendedKeyUsage(value: Buffer): boolean {
  const seq = single(value, TAGS.SEQUENCE);
  if (!seq || seq.start === seq.end) return false;
  for (let at = seq.start; at < seq.end; ) {
    const oid = readTlv(value, at, seq.end);
    if (oid?.tag !== TAGS.OID || !validOid(value, oid)) return false;
    at = oid.end;
  }
  return true;
}
