// X.509 attestation (behaviors.md §2.2, §3): match the TLS client chain to the individual enrollment
// or to the X.509 enrollment group first found walking up the chain, then check the chain up to a
// verified CA certificate of the instance. No I/O, `now` passed in. A scope's X509Trust is built
// once per change of its groups or CA store (provisioning/scope-views.ts) and keeps, bounded, what
// recurs from device to device: parsed intermediates and signature checks.
import { type KeyObject, verify, X509Certificate } from "node:crypto";
import {
  type EnrollmentGroup,
  type IndividualEnrollment,
  type X509Certificates,
  x509Of,
} from "../domain/enrollment.js";
import { deviceIdOf, type EnrollmentMatch } from "../domain/enrollment-match.js";
import { idKey } from "../domain/ids.js";
import type { CaCertificate } from "../domain/instance.js";
import { type AttestationOutcome, refused } from "./attestation-outcome.js";
import { derThumbprints, distinguishedName, parseCertificate } from "./x509-info.js";
import { type LeafFacts, leafFacts } from "./x509-leaf.js";

export interface X509AttestationInput {
  registrationId: string;
  /** DER certificates the device presented, leaf first. */
  chain: readonly Buffer[];
  /** The individual enrollment with this registration id (case-insensitive), looked up by the caller. */
  individual: IndividualEnrollment | undefined;
  /** The scope's X.509 groups and CA store, compiled. */
  trust: X509Trust;
  now: Date;
}

/** An X.509 CN is at most 64 characters (behaviors.md §1.1). */
export const MAX_CN_LENGTH = 64;

/** A certificate the device presented. The leaf may be read without OpenSSL (x509-leaf.ts). */
class Presented {
  readonly sha1: string;
  readonly sha256: string;
  /** Validity period, ms since the epoch. */
  readonly notBefore: number;
  readonly notAfter: number;
  /** Set on a leaf in the plain shape; its X509Certificate is then made only if a message needs it. */
  readonly fast: LeafFacts | undefined;
  /** As an issuer: X509_check_issued's answer for each leaf shape (x509-leaf.ts) seen under it. */
  #issued: Map<string, boolean> | undefined;
  #cert: X509Certificate | undefined;
  #name: string | undefined;
  #publicKey: KeyObject | undefined;

  constructor(
    readonly der: Buffer,
    readonly index: number,
  ) {
    this.fast = index === 0 ? leafFacts(der) : undefined;
    if (this.fast) {
      ({ sha1: this.sha1, sha256: this.sha256 } = derThumbprints(der));
      this.notBefore = this.fast.notBefore;
      this.notAfter = this.fast.notAfter;
      return;
    }
    const cert = this.cert;
    this.sha1 = hex(cert.fingerprint);
    this.sha256 = hex(cert.fingerprint256);
    this.notBefore = Date.parse(cert.validFrom);
    this.notAfter = Date.parse(cert.validTo);
  }

  get cert(): X509Certificate {
    if (this.#cert === undefined) {
      try {
        this.#cert = new X509Certificate(this.der);
      } catch {
        throw new Refused(`presented certificate ${this.index} is not a valid X.509 certificate`);
      }
    }
    return this.#cert;
  }

  /** Subject, RFC 4514 style. */
  get name(): string {
    this.#name ??= distinguishedName(this.cert.subject);
    return this.#name;
  }

  get commonName(): string | undefined {
    return this.fast ? this.fast.commonName : commonName(this.cert);
  }

  get issued(): Map<string, boolean> {
    this.#issued ??= new Map();
    return this.#issued;
  }

  get publicKey(): KeyObject {
    this.#publicKey ??= this.cert.publicKey;
    return this.#publicKey;
  }
}

/** A certificate the group walk looks at: presented (index ≥ 1), or the store certificate above the chain. */
interface Level {
  index: number;
  name: string;
  sha1: string;
  sha256: string;
}

interface StoreCert {
  ca: CaCertificate;
  cert: X509Certificate;
}

/** A refusal: `summary` is safe to show the device, `why` goes to the server log. */
class Refused extends Error {
  constructor(
    readonly summary: string,
    readonly why: string = summary,
  ) {
    super(summary);
  }
}

/** Upper-case hex without separators: how thumbprints are compared. */
const hex = (thumbprint: string): string => thumbprint.replaceAll(":", "").toUpperCase();

export function attestX509(input: X509AttestationInput): AttestationOutcome {
  let chain: Presented[] = [];
  try {
    chain = input.trust.parseChain(input.chain);
    const leaf = checkLeaf(chain, input.registrationId, input.now);
    if (input.individual) return attestIndividual(input.individual, leaf, input.registrationId);
    return attestGroups(chain, input.trust, input.now, input.registrationId);
  } catch (e) {
    if (!(e instanceof Refused)) throw e;
    const presented = chain.map((p, i) => `[${i}] ${nameOrNote(p)} sha1 ${p.sha1}`).join("; ") || "none";
    return refused(e.summary, `${e.why}. Presented chain, leaf first: ${presented}`);
  }
}

/** Attested through `match` with this leaf: the hub identity is self-signed with its thumbprints. */
const attested = (match: EnrollmentMatch, leaf: Presented, registrationId: string): AttestationOutcome => ({
  kind: "attested",
  match,
  deviceId: deviceIdOf(match, registrationId),
  credential: { kind: "x509", sha1Thumbprint: leaf.sha1, sha256Thumbprint: leaf.sha256 },
});

/** For the log: a leaf read without OpenSSL is parsed only now, and cannot fail to be (TLS parsed it). */
function nameOrNote(p: Presented): string {
  try {
    return p.name;
  } catch {
    return "(not parseable)";
  }
}

/** Bounded maps: the oldest entry goes first. */
const CACHE_LIMIT = 1024;

function remember<V>(cache: Map<string, V>, key: string, value: V): void {
  if (cache.size >= CACHE_LIMIT) {
    const oldest = cache.keys().next().value;
    if (oldest !== undefined) cache.delete(oldest);
  }
  cache.set(key, value);
}

/**
 * A scope's X.509 trust: its groups keyed by the certificates they stand for, and its CA store.
 * Parsed certificates and signature checks are pure functions of their bytes, so it keeps them
 * (bounded) for the next devices: the hot path would otherwise re-parse the same intermediates and
 * store CAs and re-verify the same intermediate → root signatures for every device.
 */
export class X509Trust {
  readonly store: Store;
  readonly keyed: readonly GroupKeys[];
  readonly #intermediates = new Map<string, Presented>();
  readonly #signatures = new Map<string, boolean>();

  constructor(groups: readonly EnrollmentGroup[], caCertificates: readonly CaCertificate[]) {
    this.store = newStoreView(caCertificates);
    this.keyed = groups.flatMap((g) => groupKeys(g, this.store));
  }

  // Step 1: parse what the device sent, once.
  parseChain(ders: readonly Buffer[]): Presented[] {
    if (ders.length === 0) throw new Refused("no client certificate was presented");
    // A loop, not `map`: map's array is packed from the builtin but holey from optimised code, and
    // that flip made V8 throw away the optimised attestation code mid-run (--log-deopt, 'wrong map').
    const chain: Presented[] = [];
    for (let i = 0; i < ders.length; i++) chain.push(this.presentedAt(ders[i] as Buffer, i));
    return chain;
  }

  private presentedAt(der: Buffer, i: number): Presented {
    // Intermediates repeat across every device of a group: read each distinct DER once. The
    // leaf is new nearly every time: keeping it would only push the intermediates out.
    if (i === 0) return new Presented(der, 0);
    const key = der.toString("base64");
    let presented = this.#intermediates.get(key);
    if (!presented) {
      presented = new Presented(der, i);
      remember(this.#intermediates, key, presented);
    }
    return presented;
  }

  /** signedBy for certificates that recur (intermediates, CAs): the answer is kept. */
  signedByKept(child: X509Certificate, issuer: X509Certificate): boolean {
    const key = `${child.fingerprint256}>${issuer.fingerprint256}`;
    const known = this.#signatures.get(key);
    if (known !== undefined) return known;
    const ok = signedBy(child, issuer);
    remember(this.#signatures, key, ok);
    return ok;
  }
}

// Step 2: the leaf names the device (CN = registration id) and is within its validity period.
function checkLeaf(chain: readonly Presented[], registrationId: string, now: Date): Presented {
  const leaf = chain[0] as Presented; // parseChain refuses an empty chain
  const cn = leaf.commonName;
  if (cn === undefined) throw new Refused("the device certificate has no subject CN");
  if (cn.length > MAX_CN_LENGTH) {
    throw new Refused(`certificate CN '${cn}' is longer than ${MAX_CN_LENGTH} characters`);
  }
  if (idKey(cn) !== idKey(registrationId)) {
    throw new Refused(`certificate CN '${cn}' does not match registration id '${registrationId}'`);
  }
  const problem = validityProblem(leaf, now, "the device certificate");
  if (problem) throw new Refused(problem);
  return leaf;
}

/** The most specific CN of the subject (node lists RDNs one a line, most general first). */
const commonName = (cert: X509Certificate): string | undefined =>
  cert.subject
    .split("\n")
    .filter((line) => line.startsWith("CN="))
    .at(-1)
    ?.slice(3);

/** `what` names the certificate; a function when naming it costs (it is needed only on failure). */
function validityProblem(p: Presented, now: Date, what: string | (() => string)): string | undefined {
  const named = (): string => (typeof what === "string" ? what : what());
  if (now.getTime() > p.notAfter) return `${named()} expired on ${new Date(p.notAfter).toISOString()}`;
  if (now.getTime() < p.notBefore) return `${named()} is not valid until ${new Date(p.notBefore).toISOString()}`;
  return undefined;
}

/** For messages: a self-issued certificate is a root (X509_check_issued, ~6 µs: not on the hot path). */
const roleOf = (p: Presented): string => (p.cert.checkIssued(p.cert) ? "root" : "intermediate");

// Step 3 (behaviors.md §3 step 2): an individual enrollment decides alone, whatever its mechanism.
function attestIndividual(
  enrollment: IndividualEnrollment,
  leaf: Presented,
  registrationId: string,
): AttestationOutcome {
  const id = enrollment.registrationId;
  const match: EnrollmentMatch = { kind: "individual", enrollment };
  if (enrollment.provisioningStatus === "disabled") return { kind: "disabled", match };
  const { type } = enrollment.attestation;
  if (type !== "x509") {
    throw new Refused(`enrollment '${id}' uses ${type} attestation`, `individual enrollment '${id}' uses ${type}`);
  }
  const clients = x509Of(enrollment.attestation)?.clientCertificates;
  if (!holds(clients, leaf)) {
    const expected = [clients?.primary, clients?.secondary].map((c) => c?.info.sha1Thumbprint ?? "none").join("/");
    throw new Refused(
      "the certificate is not one of the enrollment's client certificates",
      `individual enrollment '${id}': the leaf is neither its primary nor secondary client certificate (sha1 ${expected})`,
    );
  }
  return attested(match, leaf, registrationId);
}

const holds = (certs: X509Certificates | undefined, p: Presented): boolean =>
  [certs?.primary, certs?.secondary].some(
    (c) => c !== undefined && (hex(c.info.sha1Thumbprint) === p.sha1 || hex(c.info.sha256Thumbprint) === p.sha256),
  );

// The CA store, looked at lazily: PEMs are parsed only when the walk needs a store certificate's key.
interface Store {
  byName: ReadonlyMap<string, CaCertificate>;
  withThumbprint(sha1: string): CaCertificate[];
  /** A store certificate (verified ones preferred) that signed `p`, other than `p` itself. */
  issuerOf(p: Presented): StoreCert | undefined;
}

function newStoreView(cas: readonly CaCertificate[]): Store {
  let parsed: StoreCert[] | undefined;
  const issuers = new Map<string, StoreCert | undefined>();
  const parse = (): StoreCert[] =>
    cas.flatMap((ca) => {
      const cert = parseCertificate(ca.certificatePem);
      return cert ? [{ ca, cert }] : [];
    });
  const bySha1 = new Map<string, CaCertificate[]>();
  for (const ca of cas) {
    const sha1 = hex(ca.thumbprint);
    bySha1.set(sha1, [...(bySha1.get(sha1) ?? []), ca]);
  }
  return {
    byName: new Map(cas.map((ca) => [ca.name.toLowerCase(), ca])),
    withThumbprint: (sha1) => bySha1.get(sha1) ?? [],
    issuerOf(p) {
      if (issuers.has(p.sha1)) return issuers.get(p.sha1);
      parsed ??= parse();
      const found = parsed.filter((s) => hex(s.ca.thumbprint) !== p.sha1 && signedBy(p.cert, s.cert));
      const issuer = found.find((s) => s.ca.isVerified) ?? found[0];
      remember(issuers, p.sha1, issuer); // answers for the recurring intermediates, so signedBy need not keep them
      return issuer;
    },
  };
}

function signedBy(child: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return child.checkIssued(issuer) && child.verify(issuer.publicKey);
  } catch {
    return false; // e.g. a key type verify cannot use
  }
}

/** The most leaf shapes kept per issuer; a group's devices share one or two. */
const SHAPES_PER_ISSUER = 16;

/** signedBy for the leaf: a plain-shape leaf is checked as OpenSSL would, without parsing it (x509-leaf.ts). */
function leafSignedBy(leaf: Presented, issuer: Presented): boolean {
  const fast = leaf.fast;
  if (!fast) return signedBy(leaf.cert, issuer.cert);
  let issued = issuer.issued.get(fast.issuedShape);
  if (issued === undefined) {
    issued = checkIssued(leaf.cert, issuer.cert);
    if (issuer.issued.size < SHAPES_PER_ISSUER) issuer.issued.set(fast.issuedShape, issued);
  }
  if (!issued) return false;
  try {
    return verify(fast.digest, fast.tbs, issuer.publicKey, fast.signature);
  } catch {
    return false;
  }
}

function checkIssued(child: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return child.checkIssued(issuer);
  } catch {
    return false;
  }
}

/** The certificates a group may be on: every presented one above the leaf, then the store issuer of the last. */
function* levels(chain: readonly Presented[], store: Store): Generator<Level> {
  for (let i = 1; i < chain.length; i++) {
    const p = chain[i] as Presented;
    yield { index: i, name: `'${p.name}'`, sha1: p.sha1, sha256: p.sha256 };
  }
  const above = store.issuerOf(chain[chain.length - 1] as Presented);
  if (above) {
    const { ca, cert } = above;
    const name = `CA certificate '${ca.name}' (${distinguishedName(cert.subject)})`;
    yield { index: chain.length, name, sha1: hex(ca.thumbprint), sha256: hex(cert.fingerprint256) };
  }
}

interface GroupKeys {
  group: EnrollmentGroup;
  sha1s: Set<string>;
  sha256s: Set<string>;
}

/** The thumbprints a group's signing certificates and CA references stand for; a missing reference adds none. */
function groupKeys(group: EnrollmentGroup, store: Store): GroupKeys[] {
  const x509 = x509Of(group.attestation);
  if (!x509) return [];
  const keys: GroupKeys = { group, sha1s: new Set(), sha256s: new Set() };
  for (const c of [x509.signingCertificates?.primary, x509.signingCertificates?.secondary]) {
    if (!c) continue;
    keys.sha1s.add(hex(c.info.sha1Thumbprint));
    keys.sha256s.add(hex(c.info.sha256Thumbprint));
  }
  for (const name of [x509.caReferences?.primary, x509.caReferences?.secondary]) {
    const ca = name === undefined ? undefined : store.byName.get(name.toLowerCase());
    if (ca) keys.sha1s.add(hex(ca.thumbprint));
  }
  return [keys];
}

// Step 4 (behaviors.md §3 step 3): the first certificate above the leaf with any group decides.
function attestGroups(
  chain: readonly Presented[],
  trust: X509Trust,
  now: Date,
  registrationId: string,
): AttestationOutcome {
  const { keyed, store } = trust;
  for (const level of levels(chain, store)) {
    const here: EnrollmentGroup[] = [];
    for (const k of keyed) if (k.sha1s.has(level.sha1) || k.sha256s.has(level.sha256)) here.push(k.group);
    const disabled = here.find((g) => g.provisioningStatus === "disabled");
    if (disabled) return { kind: "disabled", match: { kind: "group", group: disabled } };
    const group = here[0];
    if (!group) continue;
    checkGroupChain(chain, level, `group '${group.enrollmentGroupId}' (on ${level.name})`, trust, now);
    return attested({ kind: "group", group }, chain[0] as Presented, registrationId);
  }
  const why = `none of ${keyed.length} X.509 group(s) is on a certificate of the chain or the store issuer above it`;
  if (chain.length === 1) {
    throw new Refused("only the leaf certificate was sent; send the chain up to the group's certificate", why);
  }
  throw new Refused("no enrollment group's certificate is in the presented chain", why);
}

// Step 5 (behaviors.md §2.2): each presented certificate signed by the next and valid now, and the walk
// from the group's certificate upward reaches a verified certificate of the store.
function checkGroupChain(chain: readonly Presented[], level: Level, tried: string, trust: X509Trust, now: Date): void {
  for (let i = 1; i < chain.length; i++) {
    const child = chain[i - 1] as Presented;
    const parent = chain[i] as Presented;
    const expired = validityProblem(parent, now, () => `${roleOf(parent)} '${parent.name}'`);
    if (expired) throw new Refused(expired, `${tried}: ${expired}`);
    if (!(i === 1 ? leafSignedBy(child, parent) : trust.signedByKept(child.cert, parent.cert))) {
      const problem = `'${child.name}' is not signed by the next certificate '${parent.name}'`;
      throw new Refused(problem, `${tried}: ${problem}`);
    }
  }
  const unverified = reachVerified(chain, level.index, trust.store);
  if (unverified === undefined) return;
  const problem = unverified
    ? `CA certificate '${unverified.name}' is not verified; complete proof of possession`
    : "the presented chain does not reach a verified CA certificate; send the chain up to a verified certificate";
  throw new Refused(problem, `${tried}: ${problem}`);
}

/** `undefined` when a verified store certificate is reached; else the unverified one met, or `null`. */
function reachVerified(chain: readonly Presented[], from: number, store: Store): CaCertificate | null | undefined {
  let unverified: CaCertificate | null = null;
  for (let i = Math.max(from, 1); i < chain.length; i++) {
    const inStore = store.withThumbprint((chain[i] as Presented).sha1);
    if (inStore.some((ca) => ca.isVerified)) return undefined;
    unverified ??= inStore[0] ?? null;
  }
  const above = store.issuerOf(chain[chain.length - 1] as Presented);
  if (above?.ca.isVerified) return undefined;
  return unverified ?? above?.ca ?? null;
}
