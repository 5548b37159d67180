// X.509 attestation (behaviors.md §1.1, §2.2, §3): individual enrollments by leaf thumbprint, groups
// by the first chain certificate that has one, and the chain up to a verified CA certificate.
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import type { EnrollmentGroup } from "../../src/domain/enrollment.js";
import type { CaCertificate } from "../../src/domain/instance.js";
import {
  createDeviceCertificate,
  createIntermediateCa,
  createRootCa,
  createSelfSignedDevice,
  type IssuedCertificate,
} from "../../src/security/cert-factory.js";
import {
  attestX509,
  caCertificate,
  caReferenceGroup,
  certificates,
  chainOf,
  info,
  signingGroup,
  symmetricKeyIndividual,
  type X509AttestationInput,
  type X509Outcome,
  x509Individual,
} from "./chain-fixtures.js";

const DAY = 24 * 3600_000;

let selfDev: IssuedCertificate;
let otherSelfDev: IssuedCertificate;
let longCn: IssuedCertificate;
let expiredLeaf: IssuedCertificate;
let futureLeaf: IssuedCertificate;
let root: IssuedCertificate;
let interA: IssuedCertificate;
let interB: IssuedCertificate;
/** dev1..dev3 under A, dev4..dev5 under B (the worked example). */
const devs: IssuedCertificate[] = [];
let expiredInter: IssuedCertificate;
let devUnderExpired: IssuedCertificate;
let impostorA: IssuedCertificate;
let devUnderImpostor: IssuedCertificate;

let verifiedRoot: CaCertificate;
let unverifiedRoot: CaCertificate;

before(async () => {
  const past = { notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) };
  selfDev = await createSelfSignedDevice("self-dev-01");
  otherSelfDev = await createSelfSignedDevice("self-dev-01");
  longCn = await createSelfSignedDevice("x".repeat(65));
  expiredLeaf = await createSelfSignedDevice("expired-dev", past);
  futureLeaf = await createSelfSignedDevice("future-dev", {
    notBefore: new Date(Date.now() + DAY),
    notAfter: new Date(Date.now() + 10 * DAY),
  });
  root = await createRootCa("Test Root");
  interA = await createIntermediateCa(root, "Intermediate A");
  interB = await createIntermediateCa(root, "Intermediate B");
  for (const n of [1, 2, 3]) devs.push(await createDeviceCertificate(interA, `dev${n}`));
  for (const n of [4, 5]) devs.push(await createDeviceCertificate(interB, `dev${n}`));
  expiredInter = await createIntermediateCa(root, "Expired Intermediate", past);
  devUnderExpired = await createDeviceCertificate(expiredInter, "dev-exp");
  // Same subject as A, different key: a leaf it signs must not pass as signed by the real A.
  impostorA = await createIntermediateCa(root, "Intermediate A");
  devUnderImpostor = await createDeviceCertificate(impostorA, "dev-impostor");
  verifiedRoot = caCertificate("test-root", root, true);
  unverifiedRoot = caCertificate("test-root", root, false);
});

const dev = (n: number): IssuedCertificate => devs[n - 1] as IssuedCertificate;

function attest(
  registrationId: string,
  chain: IssuedCertificate[],
  rest: Partial<Omit<X509AttestationInput, "registrationId" | "chain">> = {},
): X509Outcome {
  return attestX509({
    registrationId,
    chain: chainOf(...chain),
    individual: undefined,
    groups: [],
    caCertificates: [verifiedRoot],
    now: new Date(),
    ...rest,
  });
}

function assertGroup(outcome: X509Outcome, group: EnrollmentGroup, leaf: IssuedCertificate): void {
  assert.ok(outcome.ok, JSON.stringify(outcome));
  assert.deepEqual(outcome.match, { kind: "group", group });
  assert.equal(outcome.leafSha1, leaf.sha1);
  assert.equal(outcome.leafSha256, leaf.sha256);
}

function assertRefused(outcome: X509Outcome, summary: string | RegExp): { summary: string; detail: string } {
  assert.ok(!outcome.ok && "refused" in outcome, `expected a refusal, got ${JSON.stringify(outcome)}`);
  if (typeof summary === "string") assert.equal(outcome.refused.summary, summary);
  else assert.match(outcome.refused.summary, summary);
  return outcome.refused;
}

function assertDisabled(outcome: X509Outcome, expected: X509Outcome & { ok: false }): void {
  assert.deepEqual(outcome, expected);
}

describe("X.509 individual enrollments (behaviors.md §2.2, §3 step 2)", () => {
  test("a self-signed device matches its enrollment by SHA-1 or SHA-256 thumbprint", () => {
    const full = info(selfDev);
    const sha1Only = { ...full, sha256Thumbprint: "" };
    const sha256Only = { ...full, sha1Thumbprint: "" };
    const lowerCase = { ...full, sha1Thumbprint: full.sha1Thumbprint.toLowerCase(), sha256Thumbprint: "" };
    for (const stored of [sha1Only, sha256Only, lowerCase]) {
      const individual = x509Individual("self-dev-01", { primary: { info: stored } });
      const outcome = attest("SELF-dev-01", [selfDev], { individual });
      assert.deepEqual(outcome, {
        ok: true,
        match: { kind: "individual", enrollment: individual },
        leafSha1: selfDev.sha1,
        leafSha256: selfDev.sha256,
      });
    }
  });

  test("the secondary client certificate is accepted too", () => {
    const individual = x509Individual("self-dev-01", certificates(otherSelfDev, selfDev));
    assert.ok(attest("self-dev-01", [selfDev], { individual }).ok);
  });

  test("a certificate that is not the enrollment's is refused", () => {
    const individual = x509Individual("self-dev-01", certificates(otherSelfDev));
    const refused = assertRefused(
      attest("self-dev-01", [selfDev], { individual }),
      "the certificate is not one of the enrollment's client certificates",
    );
    assert.ok(!refused.summary.includes(otherSelfDev.sha1), "the summary shows no enrollment thumbprint");
    assert.match(refused.detail, /individual enrollment 'self-dev-01'/);
    assert.ok(refused.detail.includes(selfDev.sha1), "the detail lists the presented chain");
  });

  test("a disabled individual enrollment gives disabled, whatever its mechanism", () => {
    for (const individual of [
      x509Individual("self-dev-01", certificates(otherSelfDev), "disabled"),
      symmetricKeyIndividual("self-dev-01", "disabled"),
    ]) {
      assertDisabled(attest("self-dev-01", [selfDev], { individual }), {
        ok: false,
        disabled: { kind: "individual", enrollment: individual },
      });
    }
  });

  test("an enabled individual enrollment with the symmetric key mechanism refuses an X.509 device", () => {
    const individual = symmetricKeyIndividual("self-dev-01");
    assertRefused(
      attest("self-dev-01", [selfDev], { individual }),
      "enrollment 'self-dev-01' uses symmetricKey attestation",
    );
  });

  test("an enabled individual enrollment decides alone: no fall-through to groups", () => {
    const individual = x509Individual("dev1", certificates(otherSelfDev));
    const groups = [signingGroup("on-root", root)];
    assertRefused(
      attest("dev1", [dev(1), interA], { individual, groups }),
      "the certificate is not one of the enrollment's client certificates",
    );
  });
});

describe("the leaf certificate (behaviors.md §1.1, §2.2)", () => {
  test("no certificate is refused", () => {
    assertRefused(attest("self-dev-01", []), "no client certificate was presented");
  });

  test("a CN that is not the registration id is refused", () => {
    const individual = x509Individual("other-dev", certificates(selfDev));
    assertRefused(
      attest("other-dev", [selfDev], { individual }),
      "certificate CN 'self-dev-01' does not match registration id 'other-dev'",
    );
  });

  test("a CN longer than 64 characters is refused", () => {
    const id = "x".repeat(65);
    const individual = x509Individual(id, certificates(longCn));
    assertRefused(attest(id, [longCn], { individual }), /longer than 64 characters/);
  });

  test("an expired leaf is refused", () => {
    const individual = x509Individual("expired-dev", certificates(expiredLeaf));
    assertRefused(attest("expired-dev", [expiredLeaf], { individual }), /^the device certificate expired on \d{4}-/);
  });

  test("a leaf that is not yet valid is refused", () => {
    const individual = x509Individual("future-dev", certificates(futureLeaf));
    assertRefused(
      attest("future-dev", [futureLeaf], { individual }),
      /^the device certificate is not valid until \d{4}-/,
    );
  });
});

describe("X.509 enrollment groups (behaviors.md §2.2, §3 step 3)", () => {
  test("a group on an intermediate under a verified root admits leaf+intermediate and leaf+intermediate+root", () => {
    const group = signingGroup("on-a", interA);
    assertGroup(attest("dev1", [dev(1), interA], { groups: [group] }), group, dev(1));
    assertGroup(attest("dev1", [dev(1), interA, root], { groups: [group] }), group, dev(1));
  });

  test("only the leaf is refused with a summary saying so", () => {
    const group = signingGroup("on-a", interA);
    const refused = assertRefused(
      attest("dev1", [dev(1)], { groups: [group] }),
      "only the leaf certificate was sent; send the chain up to the group's certificate",
    );
    assert.ok(!refused.summary.includes(interA.sha1));
  });

  test("a chain without any group's certificate is refused", () => {
    const group = signingGroup("on-b", interB);
    assertRefused(
      attest("dev1", [dev(1), interA], { groups: [group] }),
      "no enrollment group's certificate is in the presented chain",
    );
  });

  test("a root that is not verified is refused", () => {
    const group = signingGroup("on-a", interA);
    for (const chain of [
      [dev(1), interA],
      [dev(1), interA, root],
    ]) {
      assertRefused(
        attest("dev1", chain, { groups: [group], caCertificates: [unverifiedRoot] }),
        "CA certificate 'test-root' is not verified; complete proof of possession",
      );
    }
  });

  test("a chain that reaches no store certificate is refused", () => {
    const group = signingGroup("on-a", interA);
    assertRefused(
      attest("dev1", [dev(1), interA, root], { groups: [group], caCertificates: [] }),
      /does not reach a verified/,
    );
  });

  test("a group via caReferences to the verified root admits the device, root sent or not", () => {
    const group = caReferenceGroup("by-ref", "missing-ca", "TEST-Root");
    assertGroup(attest("dev1", [dev(1), interA], { groups: [group] }), group, dev(1));
    assertGroup(attest("dev1", [dev(1), interA, root], { groups: [group] }), group, dev(1));
  });

  test("a caReference to a missing certificate never matches", () => {
    const group = caReferenceGroup("by-ref", "missing-ca");
    assertRefused(
      attest("dev1", [dev(1), interA, root], { groups: [group] }),
      "no enrollment group's certificate is in the presented chain",
    );
  });

  test("a verified intermediate shortens the required chain", () => {
    const group = caReferenceGroup("on-a", "inter-a");
    const caCertificates = [caCertificate("inter-a", interA, true)];
    assertGroup(attest("dev1", [dev(1), interA], { groups: [group], caCertificates }), group, dev(1));
  });

  test("a group's certificate must itself be verified or roll up to a verified one", () => {
    // Verified A lies below the group's root: it does not vouch for the root.
    const group = signingGroup("on-root", root);
    const caCertificates = [caCertificate("inter-a", interA, true)];
    assertRefused(
      attest("dev1", [dev(1), interA, root], { groups: [group], caCertificates }),
      /does not reach a verified/,
    );
  });

  test("a disabled group on the intermediate blocks, even next to an enabled one", () => {
    const enabled = signingGroup("on-a", interA);
    const disabled = signingGroup("on-a-disabled", interA, "disabled");
    assertDisabled(attest("dev1", [dev(1), interA], { groups: [enabled, disabled] }), {
      ok: false,
      disabled: { kind: "group", group: disabled },
    });
  });

  test("the worked example: root→A→{dev1,dev2,dev3}, root→B→{dev4,dev5}", () => {
    const onRoot = signingGroup("all-devices", root);
    const chainFor = (n: number) => [dev(n), n <= 3 ? interA : interB];
    // An enabled group on the root admits all five.
    for (const n of [1, 2, 3, 4, 5]) assertGroup(attest(`dev${n}`, chainFor(n), { groups: [onRoot] }), onRoot, dev(n));
    // A disabled group on B blocks dev4 and dev5.
    const onB = signingGroup("b-devices", interB, "disabled");
    for (const n of [1, 2, 3]) assertGroup(attest(`dev${n}`, chainFor(n), { groups: [onRoot, onB] }), onRoot, dev(n));
    for (const n of [4, 5]) {
      assertDisabled(attest(`dev${n}`, chainFor(n), { groups: [onRoot, onB] }), {
        ok: false,
        disabled: { kind: "group", group: onB },
      });
    }
    // A disabled individual enrollment for dev3 blocks only dev3.
    const dev3 = symmetricKeyIndividual("dev3", "disabled");
    for (const n of [1, 2, 3, 4, 5]) {
      const individual = n === 3 ? dev3 : undefined;
      const outcome = attest(`dev${n}`, chainFor(n), { groups: [onRoot, onB], individual });
      if (n === 3) assertDisabled(outcome, { ok: false, disabled: { kind: "individual", enrollment: dev3 } });
      else if (n >= 4) assertDisabled(outcome, { ok: false, disabled: { kind: "group", group: onB } });
      else assertGroup(outcome, onRoot, dev(n));
    }
  });

  test("an expired intermediate is refused, naming it", () => {
    const group = signingGroup("on-root", root);
    assertRefused(
      attest("dev-exp", [devUnderExpired, expiredInter, root], { groups: [group] }),
      /^intermediate 'CN=Expired Intermediate' expired on \d{4}-/,
    );
  });

  test("a leaf signed by a different key than the presented intermediate is refused", () => {
    const group = signingGroup("on-a", interA);
    const refused = assertRefused(
      attest("dev-impostor", [devUnderImpostor, interA], { groups: [group] }),
      "'CN=dev-impostor' is not signed by the next certificate 'CN=Intermediate A'",
    );
    assert.match(refused.detail, /group 'on-a'/);
    // With its real issuer the same leaf passes a group on that issuer.
    const real = signingGroup("on-impostor", impostorA);
    assertGroup(attest("dev-impostor", [devUnderImpostor, impostorA], { groups: [real] }), real, devUnderImpostor);
  });

  test("groups with other mechanisms are not part of the walk", () => {
    const symmetric: EnrollmentGroup = {
      ...signingGroup("sym", interA),
      attestation: { type: "symmetricKey", symmetricKey: { primaryKey: "a2V5", secondaryKey: "a2V5" } },
    };
    assertRefused(
      attest("dev1", [dev(1), interA], { groups: [symmetric] }),
      "no enrollment group's certificate is in the presented chain",
    );
  });
});
