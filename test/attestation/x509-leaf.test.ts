// The leaf read without OpenSSL (x509-leaf.ts): which leaves take that path, and that attestation
// answers for them exactly as OpenSSL's X509_check_issued + X509_verify would.
import "reflect-metadata";
import assert from "node:assert/strict";
import { webcrypto, X509Certificate } from "node:crypto";
import { before, describe, test } from "node:test";
import * as x509 from "@peculiar/x509";
import { derThumbprints } from "../../src/attestation/x509-info.js";
import { leafFacts } from "../../src/attestation/x509-leaf.js";
import { createRootCa, type IssuedCertificate } from "../../src/security/cert-factory.js";
import { attestX509, caCertificate, signingGroup, type X509Outcome } from "./chain-fixtures.js";
import { seq, tlv } from "./der-builder.js";

const crypto = webcrypto as unknown as Crypto;
const EC = { name: "ECDSA", namedCurve: "P-256" } as const;
const RSA = {
  name: "RSASSA-PKCS1-v1_5",
  modulusLength: 2048,
  publicExponent: new Uint8Array([1, 0, 1]),
  hash: "SHA-256",
};
const DAY = 24 * 3600_000;

const ext = (oid: string, critical: boolean, value: Buffer) => new x509.Extension(oid, critical, new Uint8Array(value));
const BC_LEAF = ext("2.5.29.19", true, seq());
const KU_SIGN = ext("2.5.29.15", true, tlv(0x03, "07", "80"));
const EKU_CLIENT = ext("2.5.29.37", false, seq(tlv(0x06, "2b06010505070302")));
const PLAIN = [BC_LEAF, KU_SIGN, EKU_CLIENT];
const akid = (keyIdHex: string) => ext("2.5.29.35", false, seq(tlv(0x80, keyIdHex)));

interface Ca {
  issued: IssuedCertificate;
  /** The algorithm the CA signs with. */
  signing: Algorithm | EcdsaParams;
  skid: string;
}

function issuedFrom(cert: x509.X509Certificate, key: CryptoKey): IssuedCertificate {
  return {
    certPem: cert.toString("pem"),
    keyPem: "",
    ...derThumbprints(new Uint8Array(cert.rawData)),
    signer: { cert, key },
  };
}

const serial = () => `7${Math.floor(Math.random() * 1e12).toString(16)}`;

async function makeCa(
  subject: string,
  parent: IssuedCertificate,
  keyAlg: typeof EC | typeof RSA,
  keyUsage: number,
): Promise<Ca> {
  const keys = await crypto.subtle.generateKey(keyAlg, true, ["sign", "verify"]);
  const skid = await x509.SubjectKeyIdentifierExtension.create(keys.publicKey);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject,
    issuer: parent.signer.cert.subject,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 30 * DAY),
    publicKey: keys.publicKey,
    signingKey: parent.signer.key,
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(keyUsage, true),
      skid,
    ],
  });
  const signing = keyAlg === EC ? { name: "ECDSA", hash: "SHA-256" } : { name: "RSASSA-PKCS1-v1_5" };
  return { issued: issuedFrom(cert, keys.privateKey), signing, skid: skid.keyId };
}

interface LeafOptions {
  subject?: string;
  extensions?: x509.Extension[];
  notBefore?: Date;
  notAfter?: Date;
  signing?: Algorithm | EcdsaParams;
}

let leafKeys: CryptoKeyPair;

async function leaf(signer: Ca, id: string, o: LeafOptions = {}): Promise<Buffer> {
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: o.subject ?? `CN=${id}`,
    issuer: signer.issued.signer.cert.subject,
    notBefore: o.notBefore ?? new Date(Date.now() - DAY),
    notAfter: o.notAfter ?? new Date(Date.now() + 10 * DAY),
    publicKey: leafKeys.publicKey,
    signingKey: signer.issued.signer.key,
    signingAlgorithm: o.signing ?? signer.signing,
    extensions: o.extensions ?? PLAIN,
  });
  return Buffer.from(cert.rawData);
}

/** What OpenSSL says about `issuer` having signed `leaf`. */
function openssl(leafDer: Buffer, issuer: Ca): boolean {
  const l = new X509Certificate(leafDer);
  const i = new X509Certificate(issuer.issued.certPem);
  return l.checkIssued(i) && l.verify(i.publicKey);
}

function attest(id: string, leafDer: Buffer, presentedIssuer: Ca, groupOn: Ca = presentedIssuer): X509Outcome {
  return attestX509({
    registrationId: id,
    chain: [leafDer, new X509Certificate(presentedIssuer.issued.certPem).raw],
    individual: undefined,
    groups: [signingGroup(`on-${groupOn.skid.slice(0, 8)}`, groupOn.issued)],
    caCertificates: [caCertificate("ca", groupOn.issued, true)],
    now: new Date(),
  });
}

let root: IssuedCertificate;
let ec: Ca;
let ecTwin: Ca; // same subject as `ec`, another key
let rsa: Ca;
let rsaNamedLikeEc: Ca; // an RSA key under the EC intermediate's name
let noCertSign: Ca;

before(async () => {
  leafKeys = await crypto.subtle.generateKey(EC, true, ["sign", "verify"]);
  root = await createRootCa("Leaf Test Root");
  const caUsage = x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign;
  ec = await makeCa("CN=Leaf Test Intermediate", root, EC, caUsage);
  ecTwin = await makeCa("CN=Leaf Test Intermediate", root, EC, caUsage);
  rsa = await makeCa("CN=Leaf Test RSA Intermediate", root, RSA, caUsage);
  rsaNamedLikeEc = await makeCa("CN=Leaf Test Intermediate", root, RSA, caUsage);
  noCertSign = await makeCa("CN=Leaf Test Signing-Only CA", root, EC, x509.KeyUsageFlags.digitalSignature);
});

interface Case {
  what: string;
  id: string;
  make: () => Promise<Buffer>;
  /** The issuer presented after the leaf (and the group's certificate unless `groupOn`). */
  issuer: () => Ca;
  groupOn?: () => Ca;
  fast: boolean;
  accepted: boolean;
}

const flipLastByte = (der: Buffer): Buffer => {
  const copy = Buffer.from(der);
  copy[copy.length - 1] = (copy[copy.length - 1] as number) ^ 0x01;
  return copy;
};

const cases: Case[] = [
  {
    what: "plain device certificate",
    id: "plain",
    make: () => leaf(ec, "plain"),
    issuer: () => ec,
    fast: true,
    accepted: true,
  },
  {
    what: "key ids matching the issuer",
    id: "with-akid",
    make: async () =>
      leaf(ec, "with-akid", {
        extensions: [...PLAIN, await x509.SubjectKeyIdentifierExtension.create(leafKeys.publicKey), akid(ec.skid)],
      }),
    issuer: () => ec,
    fast: true,
    accepted: true,
  },
  {
    what: "an authority key id that is not the issuer's",
    id: "wrong-akid",
    make: () => leaf(ec, "wrong-akid", { extensions: [...PLAIN, akid("00".repeat(20))] }),
    issuer: () => ec,
    fast: true,
    accepted: false,
  },
  {
    what: "a signature that does not verify",
    id: "tampered",
    make: async () => flipLastByte(await leaf(ec, "tampered")),
    issuer: () => ec,
    fast: true,
    accepted: false,
  },
  {
    what: "signed by another key under the same issuer name",
    id: "twin-signed",
    make: () => leaf(ecTwin, "twin-signed"),
    issuer: () => ec,
    fast: true,
    accepted: false,
  },
  {
    what: "an RSA signature under the EC issuer's name",
    id: "rsa-under-ec-name",
    make: () => leaf(rsaNamedLikeEc, "rsa-under-ec-name"),
    issuer: () => ec,
    fast: true,
    accepted: false,
  },
  {
    what: "RSA issuer, PKCS#1 v1.5 SHA-256",
    id: "rsa-signed",
    make: () => leaf(rsa, "rsa-signed"),
    issuer: () => rsa,
    fast: true,
    accepted: true,
  },
  {
    what: "ECDSA with SHA-384",
    id: "sha384",
    make: () => leaf(ec, "sha384", { signing: { name: "ECDSA", hash: "SHA-384" } as EcdsaParams }),
    issuer: () => ec,
    fast: true,
    accepted: true,
  },
  {
    what: "an issuer whose key usage lacks keyCertSign",
    id: "no-cert-sign",
    make: () => leaf(noCertSign, "no-cert-sign"),
    issuer: () => noCertSign,
    fast: true,
    accepted: false,
  },
  {
    what: "GeneralizedTime validity past 2049",
    id: "far-future",
    make: () => leaf(ec, "far-future", { notAfter: new Date(Date.UTC(2060, 0, 1)) }),
    issuer: () => ec,
    fast: true,
    accepted: true,
  },
  {
    what: "a subject alternative name (left to OpenSSL)",
    id: "with-san",
    make: () =>
      leaf(ec, "with-san", {
        extensions: [...PLAIN, ext("2.5.29.17", false, seq(tlv(0x82, Buffer.from("dev.example"))))],
      }),
    issuer: () => ec,
    fast: false,
    accepted: true,
  },
  {
    what: "a duplicated key usage (OpenSSL: invalid)",
    id: "dup-ku",
    make: () => leaf(ec, "dup-ku", { extensions: [...PLAIN, KU_SIGN] }),
    issuer: () => ec,
    fast: false,
    accepted: false,
  },
  {
    what: "a CN outside the id charset",
    id: "dev 7",
    make: () => leaf(ec, "dev 7"),
    issuer: () => ec,
    fast: false,
    accepted: true,
  },
  {
    what: "a multi-valued RDN",
    id: "multi",
    make: () => leaf(ec, "multi", { subject: "CN=multi+O=Org" }),
    issuer: () => ec,
    fast: false,
    accepted: false,
  },
];

describe("the leaf without an OpenSSL parse (x509-leaf.ts)", () => {
  const made = new Map<string, Buffer>();
  before(async () => {
    for (const c of cases) made.set(c.what, await c.make());
  });

  test("plain leaves take the fast path with OpenSSL's facts; others do not", () => {
    for (const c of cases) {
      const der = made.get(c.what) as Buffer;
      const facts = leafFacts(der);
      assert.equal(facts !== undefined, c.fast, c.what);
      if (!facts) continue;
      const x = new X509Certificate(der);
      assert.equal(`CN=${facts.commonName}`, x.subject, c.what);
      assert.equal(facts.notBefore, Date.parse(x.validFrom), c.what);
      assert.equal(facts.notAfter, Date.parse(x.validTo), c.what);
    }
  });

  test("attestation agrees with X509_check_issued + X509_verify, whatever the order leaves arrive in", () => {
    const run = (list: Case[]) => {
      for (const c of list) {
        const der = made.get(c.what) as Buffer;
        const outcome = attest(c.id, der, c.issuer(), c.groupOn?.());
        assert.equal(outcome.ok, c.accepted, `${c.what}: ${JSON.stringify(outcome)}`);
        // OpenSSL's word on the signature, where the CN allows acceptance at all.
        if (!c.what.includes("multi-valued")) assert.equal(openssl(der, c.issuer()), c.accepted, c.what);
      }
    };
    run(cases);
    run([...cases].reverse());
    run(cases);
  });

  test("a refusal names the fast-path leaf as OpenSSL prints it", () => {
    const der = made.get("a signature that does not verify") as Buffer;
    const outcome = attest("tampered", der, ec);
    assert.ok(!outcome.ok && "refused" in outcome);
    assert.equal(
      outcome.refused.summary,
      "'CN=tampered' is not signed by the next certificate 'CN=Leaf Test Intermediate'",
    );
    assert.match(outcome.refused.detail, /\[0\] CN=tampered sha1 [0-9A-F]{40}; \[1\] CN=Leaf Test Intermediate/);
  });

  test("an expired fast-path leaf is refused with the date, as before", async () => {
    const der = await leaf(ec, "expired", {
      notBefore: new Date(Date.UTC(2020, 0, 1)),
      notAfter: new Date(Date.UTC(2021, 5, 1)),
    });
    assert.ok(leafFacts(der));
    const outcome = attest("expired", der, ec);
    assert.ok(!outcome.ok && "refused" in outcome);
    assert.equal(outcome.refused.summary, "the device certificate expired on 2021-06-01T00:00:00.000Z");
  });
});
