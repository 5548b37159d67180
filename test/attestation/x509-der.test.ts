// Strict DER reading of certificate parts (x509-der.ts), from byte fixtures.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { describe, test } from "node:test";
import { certificateParts, derTime, nameAttributes, readTlv, validOid } from "../../src/attestation/x509-der.js";
import { seq, tlv } from "./der-builder.js";

// A device certificate as the bench issues them: CN=bench-x509-1-0 under CN=Provisio Bench
// Intermediate, ECDSA P-256, basicConstraints (critical), keyUsage (critical), extKeyUsage clientAuth.
const BENCH_LEAF = Buffer.from(
  "3082016e30820114a003020102020c176f11ee1053592d22a97662300a06082a8648ce3d0403023026312430220603550403131b50726f766973696f2042656e636820496e7465726d656469617465301e170d3236313132323230343234345a170d3237313132323231343234345a3019311730150603550403130e62656e63682d783530392d312d303059301306072a8648ce3d020106082a8648ce3d030107034200048f173030f57c969f1b969434b81307390565fd6df55350bf608ac71419afc2a30e8f2a360c0571d5d06e6aa4c059952ef2ec2a91600d9f921fd659c7d4a90ce6a3353033300c0603551d130101ff04023000300e0603551d0f0101ff04040302078030130603551d25040c300a06082b06010505070302300a06082a8648ce3d0403020348003045022034582869c072deb2509d070281aa9ee613c647634dba1be8a3b60da2e6c329d7022100ddeca340c55e6e1264e141442d822ee53b65c0bc5531d943c8afba066b7fc4a5",
  "hex",
);

const ECDSA_SHA256 = seq(tlv(0x06, "2a8648ce3d040302"));
const name = (cn: string) => seq(tlv(0x31, seq(tlv(0x06, "550403"), tlv(0x0c, Buffer.from(cn)))));
const time = (tag: number, text: string) => tlv(tag, Buffer.from(text, "latin1"));
const SPKI = seq(seq(tlv(0x06, "2a8648ce3d0201"), tlv(0x06, "2a8648ce3d030107")), tlv(0x03, "00", "04".repeat(65)));

interface Shape {
  version?: Buffer | null;
  validity?: Buffer;
  subject?: Buffer;
  extensions?: Buffer | null;
  after?: Buffer;
  signature?: Buffer;
}

/** A synthetic certificate: certificateParts reads structure only, so the signature need not verify. */
function cert(shape: Shape = {}): Buffer {
  const version = shape.version === undefined ? tlv(0xa0, tlv(0x02, "02")) : shape.version;
  const ext = seq(tlv(0x06, "551d13"), tlv(0x01, "ff"), tlv(0x04, seq()));
  const extensions = shape.extensions === undefined ? tlv(0xa3, seq(ext)) : shape.extensions;
  const tbs = seq(
    ...(version ? [version] : []),
    tlv(0x02, "01"),
    ECDSA_SHA256,
    name("issuer"),
    shape.validity ?? seq(time(0x17, "250101000000Z"), time(0x17, "350101000000Z")),
    shape.subject ?? name("dev"),
    SPKI,
    ...(extensions ? [extensions] : []),
    ...(shape.after ? [shape.after] : []),
  );
  return seq(tbs, ECDSA_SHA256, shape.signature ?? tlv(0x03, "00", "3006020101020101"));
}

describe("certificateParts (RFC 5280 §4.1)", () => {
  test("reads a bench device certificate as OpenSSL does", () => {
    const parts = certificateParts(BENCH_LEAF);
    assert.ok(parts);
    const x = new X509Certificate(BENCH_LEAF);
    assert.equal(parts.version, 2);
    assert.equal(parts.notBefore, Date.parse(x.validFrom));
    assert.equal(parts.notAfter, Date.parse(x.validTo));
    assert.equal(new Date(parts.notBefore).toISOString(), "2026-11-22T20:42:44.000Z");
    assert.equal(parts.tbs.toString("hex").slice(0, 8), "30820114");
    assert.equal(parts.tbs.length, 4 + 0x114);
    assert.ok(parts.signatureAlgorithm.equals(parts.tbsSignatureAlgorithm));
    assert.equal(parts.signatureAlgorithm.toString("hex"), "300a06082a8648ce3d040302");
    assert.equal(parts.signature.toString("hex").slice(0, 4), "3045");
    assert.equal(parts.signature.length, 0x47);
    assert.deepEqual(
      parts.extensions.map((e) => [e.oid.toString("hex"), e.critical, e.value.toString("hex")]),
      [
        ["551d13", true, "3000"],
        ["551d0f", true, "03020780"],
        ["551d25", false, "300a06082b06010505070302"],
      ],
    );
    const subject = nameAttributes(parts.subject);
    assert.deepEqual(
      subject?.map((a) => [a.type.toString("hex"), a.tag, a.value.toString()]),
      [["550403", 0x13, "bench-x509-1-0"]],
    );
    assert.equal(nameAttributes(parts.issuer)?.[0]?.value.toString(), "Provisio Bench Intermediate");
  });

  test("a synthetic certificate reads back", () => {
    const parts = certificateParts(cert());
    assert.ok(parts);
    assert.equal(parts.extensions.length, 1);
    assert.equal(parts.notAfter, Date.UTC(2035, 0, 1));
    assert.equal(certificateParts(cert({ version: null, extensions: null }))?.version, 0);
  });

  test("anything outside the DER shape read is undefined, not a guess", () => {
    const cases: Record<string, Buffer> = {
      truncated: BENCH_LEAF.subarray(0, BENCH_LEAF.length - 1),
      "trailing byte": Buffer.concat([BENCH_LEAF, Buffer.from([0])]),
      "v1 with extensions": cert({ version: null }),
      "v1 encoded explicitly": cert({ version: tlv(0xa0, tlv(0x02, "00")) }),
      "version 4": cert({ version: tlv(0xa0, tlv(0x02, "03")) }),
      "an issuer unique id": cert({ after: tlv(0x81, "00ff") }),
      "critical FALSE encoded": cert({
        extensions: tlv(0xa3, seq(seq(tlv(0x06, "551d13"), tlv(0x01, "00"), tlv(0x04, seq())))),
      }),
      "an empty extension list": cert({ extensions: tlv(0xa3, seq()) }),
      "signature with unused bits": cert({ signature: tlv(0x03, "01", "3006020101020101") }),
      "an empty signature": cert({ signature: tlv(0x03) }),
      "a local-time validity": cert({ validity: seq(time(0x17, "2501010000Z"), time(0x17, "350101000000Z")) }),
    };
    for (const [what, der] of Object.entries(cases)) assert.equal(certificateParts(der), undefined, what);
  });
});

describe("readTlv", () => {
  test("short and long definite lengths", () => {
    assert.deepEqual(readTlv(Buffer.from("0403aabbcc", "hex"), 0, 5), { tag: 4, start: 2, end: 5 });
    const long = Buffer.concat([Buffer.from("048180", "hex"), Buffer.alloc(0x80)]);
    assert.deepEqual(readTlv(long, 0, long.length), { tag: 4, start: 3, end: 0x83 });
  });

  test("refuses indefinite, non-minimal, overrunning and high-tag encodings", () => {
    const padded = Buffer.concat([Buffer.from("04820080", "hex"), Buffer.alloc(0x80)]);
    for (const [what, der] of [
      ["indefinite", Buffer.from("30800000", "hex")],
      ["long form for a short length", Buffer.from("048103aabbcc", "hex")],
      ["a leading zero length octet", padded],
      ["overruns its parent", Buffer.from("0405aabb", "hex")],
      ["a multi-octet tag", Buffer.from("1f0100", "hex")],
      ["no length", Buffer.from("04", "hex")],
    ] as const) {
      assert.equal(readTlv(der, 0, der.length), undefined, what);
    }
  });
});

describe("derTime (RFC 5280 §4.1.2.5)", () => {
  const at = (tag: number, text: string) => {
    const der = time(tag, text);
    return derTime(der, { tag, start: 2, end: der.length });
  };

  test("UTCTime years 50-99 are 19xx, 00-49 are 20xx; GeneralizedTime is as written", () => {
    assert.equal(at(0x17, "491231235959Z"), Date.UTC(2049, 11, 31, 23, 59, 59));
    assert.equal(at(0x17, "500101000000Z"), Date.UTC(1950, 0, 1));
    assert.equal(at(0x18, "20500101000000Z"), Date.UTC(2050, 0, 1));
    assert.equal(at(0x18, "99991231235959Z"), Date.UTC(9999, 11, 31, 23, 59, 59));
  });

  test("calendar days are checked, leap years included", () => {
    assert.equal(at(0x18, "20240229120000Z"), Date.UTC(2024, 1, 29, 12));
    assert.equal(at(0x18, "20000229120000Z"), Date.UTC(2000, 1, 29, 12));
    for (const bad of ["20230229120000Z", "21000229120000Z", "20240431000000Z", "20241301000000Z", "20240100000000Z"]) {
      assert.equal(at(0x18, bad), undefined, bad);
    }
  });

  test("other forms are left to OpenSSL", () => {
    for (const [tag, text] of [
      [0x17, "2501010000Z"],
      [0x17, "250101000000+0100"],
      [0x18, "20500101000000.5Z"],
      [0x18, "2050010100000aZ"],
      [0x17, "250101240000Z"],
      [0x17, "250101006000Z"],
      [0x18, "19491231235959Z"],
      [0x04, "250101000000Z"],
    ] as const) {
      assert.equal(at(tag, text), undefined, text);
    }
  });
});

describe("nameAttributes", () => {
  test("one attribute per RDN, most general first", () => {
    const der = seq(
      tlv(0x31, seq(tlv(0x06, "55040a"), tlv(0x13, Buffer.from("Org")))),
      tlv(0x31, seq(tlv(0x06, "550403"), tlv(0x0c, Buffer.from("a")))),
      tlv(0x31, seq(tlv(0x06, "550403"), tlv(0x0c, Buffer.from("b")))),
    );
    assert.deepEqual(
      nameAttributes(der)?.map((a) => `${a.type.toString("hex")}=${a.value}`),
      ["55040a=Org", "550403=a", "550403=b"],
    );
    assert.deepEqual(nameAttributes(seq()), []);
  });

  test("a multi-valued RDN is undefined", () => {
    const atv = (v: string) => seq(tlv(0x06, "550403"), tlv(0x0c, Buffer.from(v)));
    assert.equal(nameAttributes(seq(tlv(0x31, atv("a"), atv("b")))), undefined);
  });
});

test("validOid: each arc minimal, the last octet ends an arc", () => {
  const oid = (hex: string) => {
    const der = tlv(0x06, hex);
    return validOid(der, { tag: 6, start: 2, end: der.length });
  };
  assert.equal(oid("2b06010505070302"), true);
  assert.equal(oid("2a8648ce3d040302"), true);
  assert.equal(oid("2b8001"), false); // 0x80 opens an arc with a zero septet
  assert.equal(oid("2b86"), false); // ends inside an arc
  assert.equal(oid(""), false);
});
