// Strict DER reading of the parts of an X.509 certificate (RFC 5280 §4.1) that the leaf fast path
// needs (x509-leaf.ts). Pure, no crypto. It reads only the narrow DER shape and returns `undefined`
// for anything else: non-minimal or indefinite lengths, high tag numbers, unique ids, a v1
// certificate with extensions, an explicit default. The caller then lets OpenSSL parse the
// certificate, so being narrower than OpenSSL only costs speed.

const SEQUENCE = 0x30;
const SET = 0x31;
const INTEGER = 0x02;
const BIT_STRING = 0x03;
const OCTET_STRING = 0x04;
const BOOLEAN = 0x01;
const OID = 0x06;
const UTC_TIME = 0x17;
const GENERALIZED_TIME = 0x18;
const VERSION = 0xa0; // [0] EXPLICIT
const EXTENSIONS = 0xa3; // [3] EXPLICIT

/** One TLV: its tag and where its contents are, [start, end) of the buffer. */
export interface Tlv {
  tag: number;
  start: number;
  end: number;
}

/** The TLV at `pos`, which must end by `limit`; `undefined` unless it is well-formed DER. */
export function readTlv(der: Buffer, pos: number, limit: number): Tlv | undefined {
  if (pos + 2 > limit) return undefined;
  const tag = der[pos] as number;
  if ((tag & 0x1f) === 0x1f) return undefined; // multi-octet tag numbers do not occur in the parts read
  let length = der[pos + 1] as number;
  let start = pos + 2;
  if (length & 0x80) {
    const octets = length & 0x7f;
    // 0 is the indefinite form (BER only); more than 3 octets is a 16 MiB+ certificate.
    if (octets === 0 || octets > 3 || start + octets > limit || der[start] === 0) return undefined;
    length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + (der[start + i] as number);
    if (length < 0x80) return undefined; // DER uses the short form when it fits
    start += octets;
  }
  const end = start + length;
  return end > limit ? undefined : { tag, start, end };
}

/** Like readTlv, and the tag must be `tag`. */
function expect(der: Buffer, pos: number, limit: number, tag: number): Tlv | undefined {
  const tlv = readTlv(der, pos, limit);
  return tlv?.tag === tag ? tlv : undefined;
}

/** The whole TLV (tag and length included) as a view. */
const whole = (der: Buffer, at: number, tlv: Tlv): Buffer => der.subarray(at, tlv.end);

export interface Extension {
  /** The OID's content octets. */
  oid: Buffer;
  critical: boolean;
  /** extnValue's content octets: the DER of the extension's own value. */
  value: Buffer;
}

export interface CertificateParts {
  /** TBSCertificate, tag and length included: the bytes the signature covers. */
  tbs: Buffer;
  /** The outer signatureAlgorithm and the one inside tbs, each a whole AlgorithmIdentifier TLV. */
  signatureAlgorithm: Buffer;
  tbsSignatureAlgorithm: Buffer;
  /** signatureValue's bits (a whole number of octets). */
  signature: Buffer;
  /** 1 for v2, 2 for v3; 0 when absent (v1). */
  version: number;
  /** Whole Name TLVs. */
  issuer: Buffer;
  subject: Buffer;
  /** Validity, ms since the epoch. */
  notBefore: number;
  notAfter: number;
  extensions: Extension[];
}

/** The parts of a DER certificate; `undefined` unless the whole of it is in the shape read. */
export function certificateParts(der: Buffer): CertificateParts | undefined {
  const cert = expect(der, 0, der.length, SEQUENCE);
  if (!cert || cert.end !== der.length) return undefined;
  const tbs = expect(der, cert.start, cert.end, SEQUENCE);
  const algorithm = tbs && expect(der, tbs.end, cert.end, SEQUENCE);
  const signature = algorithm && expect(der, algorithm.end, cert.end, BIT_STRING);
  // The signature is whole octets: the unused-bits octet is 0 (OpenSSL refuses anything else).
  if (!signature || signature.end !== cert.end || signature.end === signature.start) return undefined;
  if (der[signature.start] !== 0) return undefined;

  let at = tbs.start;
  let version = 0;
  const first = readTlv(der, at, tbs.end);
  if (first?.tag === VERSION) {
    const v = expect(der, first.start, first.end, INTEGER);
    // v1 (0) is the default and so never encoded in DER.
    if (!v || v.end !== first.end || v.end - v.start !== 1) return undefined;
    version = der[v.start] as number;
    if (version !== 1 && version !== 2) return undefined;
    at = first.end;
  }
  const serial = expect(der, at, tbs.end, INTEGER);
  if (!serial || serial.end === serial.start) return undefined;
  const innerAlgorithmAt = serial.end;
  const innerAlgorithm = expect(der, innerAlgorithmAt, tbs.end, SEQUENCE);
  const issuer = innerAlgorithm && expect(der, innerAlgorithm.end, tbs.end, SEQUENCE);
  const validity = issuer && expect(der, issuer.end, tbs.end, SEQUENCE);
  const subject = validity && expect(der, validity.end, tbs.end, SEQUENCE);
  const publicKey = subject && expect(der, subject.end, tbs.end, SEQUENCE);
  if (!innerAlgorithm || !issuer || !validity || !subject || !publicKey) return undefined;

  const notBefore = readTlv(der, validity.start, validity.end);
  const notAfter = notBefore && readTlv(der, notBefore.end, validity.end);
  if (!notBefore || !notAfter || notAfter.end !== validity.end) return undefined;
  const from = derTime(der, notBefore);
  const to = derTime(der, notAfter);
  if (from === undefined || to === undefined) return undefined;

  let extensions: Extension[] = [];
  if (publicKey.end !== tbs.end) {
    const wrapper = expect(der, publicKey.end, tbs.end, EXTENSIONS); // unique ids ([1], [2]) are not read
    if (!wrapper || wrapper.end !== tbs.end || version !== 2) return undefined;
    const list = readExtensions(der, wrapper);
    if (!list) return undefined;
    extensions = list;
  }
  return {
    tbs: whole(der, cert.start, tbs),
    signatureAlgorithm: whole(der, tbs.end, algorithm),
    tbsSignatureAlgorithm: whole(der, innerAlgorithmAt, innerAlgorithm),
    signature: der.subarray(signature.start + 1, signature.end),
    version,
    issuer: whole(der, innerAlgorithm.end, issuer),
    subject: whole(der, validity.end, subject),
    notBefore: from,
    notAfter: to,
    extensions,
  };
}

function readExtensions(der: Buffer, wrapper: Tlv): Extension[] | undefined {
  const list = expect(der, wrapper.start, wrapper.end, SEQUENCE);
  if (!list || list.end !== wrapper.end || list.start === list.end) return undefined; // SIZE (1..MAX)
  const extensions: Extension[] = [];
  for (let at = list.start; at < list.end; ) {
    const ext = expect(der, at, list.end, SEQUENCE);
    const oid = ext && expect(der, ext.start, ext.end, OID);
    if (!ext || !oid) return undefined;
    let next = readTlv(der, oid.end, ext.end);
    let critical = false;
    if (next?.tag === BOOLEAN) {
      // DEFAULT FALSE: DER encodes only TRUE, as 0xff.
      if (next.end - next.start !== 1 || der[next.start] !== 0xff) return undefined;
      critical = true;
      next = readTlv(der, next.end, ext.end);
    }
    if (next?.tag !== OCTET_STRING || next.end !== ext.end) return undefined;
    extensions.push({ oid: der.subarray(oid.start, oid.end), critical, value: der.subarray(next.start, next.end) });
    at = ext.end;
  }
  return extensions;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** UTCTime YYMMDDHHMMSSZ or GeneralizedTime YYYYMMDDHHMMSSZ (RFC 5280 §4.1.2.5), as ms; else `undefined`. */
export function derTime(der: Buffer, tlv: Tlv): number | undefined {
  const digits = tlv.tag === UTC_TIME ? 12 : tlv.tag === GENERALIZED_TIME ? 14 : 0;
  if (digits === 0 || tlv.end - tlv.start !== digits + 1 || der[tlv.end - 1] !== 0x5a /* Z */) return undefined;
  const values: number[] = [];
  for (let i = tlv.start; i < tlv.end - 1; i += 2) {
    const hi = (der[i] as number) - 0x30;
    const lo = (der[i + 1] as number) - 0x30;
    if (hi < 0 || hi > 9 || lo < 0 || lo > 9) return undefined;
    values.push(hi * 10 + lo);
  }
  if (digits === 12) values.unshift((values[0] as number) >= 50 ? 19 : 20); // RFC 5280: YY ≥ 50 is 19YY
  const [century, yy, month, day, hour, minute, second] = values as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const year = century * 100 + yy;
  if (year < 1950 || month < 1 || month > 12 || hour > 23 || minute > 59 || second > 59) return undefined;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = (DAYS_IN_MONTH[month - 1] as number) + (month === 2 && leap ? 1 : 0);
  if (day < 1 || day > days) return undefined;
  return Date.UTC(year, month - 1, day, hour, minute, second);
}

/** One attribute of a Name: its type's OID content octets, the value's tag and content octets. */
export interface NameAttribute {
  type: Buffer;
  tag: number;
  value: Buffer;
}

/**
 * The attributes of a whole Name TLV, most general first, when every RDN holds exactly one
 * (multi-valued RDNs print differently and are left to OpenSSL); else `undefined`.
 */
export function nameAttributes(name: Buffer): NameAttribute[] | undefined {
  const seq = expect(name, 0, name.length, SEQUENCE);
  if (!seq || seq.end !== name.length) return undefined;
  const attributes: NameAttribute[] = [];
  for (let at = seq.start; at < seq.end; ) {
    const rdn = expect(name, at, seq.end, SET);
    const atv = rdn && expect(name, rdn.start, rdn.end, SEQUENCE);
    if (!rdn || !atv || atv.end !== rdn.end) return undefined;
    const type = expect(name, atv.start, atv.end, OID);
    const value = type && readTlv(name, type.end, atv.end);
    if (!type || !value || value.end !== atv.end) return undefined;
    attributes.push({
      type: name.subarray(type.start, type.end),
      tag: value.tag,
      value: name.subarray(value.start, value.end),
    });
    at = rdn.end;
  }
  return attributes;
}

/** Whether `der` is exactly one TLV with tag `tag` (for extension values). */
export function single(der: Buffer, tag: number): Tlv | undefined {
  const tlv = expect(der, 0, der.length, tag);
  return tlv && tlv.end === der.length ? tlv : undefined;
}

/** An OID's content octets are well-formed: each arc minimal, the last octet closing an arc. */
export function validOid(der: Buffer, tlv: Tlv): boolean {
  if (tlv.end === tlv.start || ((der[tlv.end - 1] as number) & 0x80) !== 0) return false;
  for (let i = tlv.start; i < tlv.end; i++) {
    const startsArc = i === tlv.start || ((der[i - 1] as number) & 0x80) === 0;
    if (startsArc && der[i] === 0x80) return false;
  }
  return true;
}

export const TAGS = { SEQUENCE, INTEGER, BIT_STRING, OCTET_STRING, BOOLEAN, OID } as const;
