// CA certificates and proof of possession (management.md §5) against a real `provisio serve`.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { after, before, describe, test } from "node:test";
import {
  createRootCa,
  createVerificationCertificate,
  type IssuedCertificate,
} from "../../src/security/cert-factory.js";
import { addPolicy, call, type HttpReply } from "../support/management.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";

interface CertResource {
  id: string;
  name: string;
  type: string;
  etag: string;
  properties: {
    subject: string;
    expiry: string;
    thumbprint: string;
    isVerified: boolean;
    certificate?: string;
    verificationCode?: string;
    created: string;
    updated: string;
  };
}
interface ErrorReply {
  errorCode: number;
  message: string;
}

const BASE = "/provisioningServices/provisio/certificates";
const RFC1123 = /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/;

const json = (body: unknown) => JSON.stringify(body);
const resource = (r: HttpReply) => r.json() as CertResource;
const error = (r: HttpReply) => r.json() as ErrorReply;

describe("CA certificates", () => {
  let p: ProvisioProcess;
  let ca: IssuedCertificate;
  before(async () => {
    p = await startProvisio();
    ca = await createRootCa("Contoso Test Root");
  });
  after(async () => {
    await p.dispose();
  });

  const upload = (name: string, certificate: string, extra: Record<string, unknown> = {}, headers = {}) =>
    call(p, "PUT", `${BASE}/${name}`, { body: json({ certificate, ...extra }), headers });

  test("upload: 201 with subject, RFC 1123 expiry, SHA-1 thumbprint; the PEM is not echoed", async () => {
    const r = await upload("contoso-root", ca.certPem);
    assert.equal(r.status, 201, r.text);
    const c = resource(r);
    assert.equal(c.name, "contoso-root");
    assert.equal(c.type, "Microsoft.Devices/ProvisioningServices/Certificates");
    assert.equal(c.id, "/provisioningServices/provisio/certificates/contoso-root");
    assert.ok(c.etag);
    assert.equal(c.properties.subject, "CN=Contoso Test Root");
    assert.equal(c.properties.thumbprint, ca.sha1);
    assert.match(c.properties.thumbprint, /^[0-9A-F]{40}$/);
    assert.equal(c.properties.isVerified, false);
    assert.match(c.properties.expiry, RFC1123);
    assert.equal(c.properties.expiry, new Date(new X509Certificate(ca.certPem).validTo).toUTCString());
    assert.match(c.properties.created, RFC1123);
    assert.match(c.properties.updated, RFC1123);
    assert.equal(c.properties.certificate, undefined);
    assert.equal(c.properties.verificationCode, undefined);
    assert.ok(!r.text.includes("BEGIN CERTIFICATE"));
  });

  test("list and get; names are case-insensitive; unknown names are 404", async () => {
    const list = await call(p, "GET", BASE);
    assert.equal(list.status, 200);
    const value = (list.json() as { value: CertResource[] }).value;
    assert.ok(value.some((c) => c.name === "contoso-root"));
    assert.ok(!list.text.includes("BEGIN CERTIFICATE"));

    const got = await call(p, "GET", `${BASE}/CONTOSO-ROOT`);
    assert.equal(got.status, 200);
    assert.equal(resource(got).name, "contoso-root");
    assert.equal(resource(got).properties.thumbprint, ca.sha1);

    const missing = await call(p, "GET", `${BASE}/nope`);
    assert.equal(missing.status, 404);
    assert.equal(error(missing).errorCode, 404401);
  });

  test("the ARM prefix works for certificates too", async () => {
    const r = await call(
      p,
      "GET",
      `/subscriptions/s/resourceGroups/rg/providers/Microsoft.Devices${BASE}/contoso-root?api-version=2022-02-05`,
    );
    assert.equal(r.status, 200, r.text);
    assert.equal(resource(r).name, "contoso-root");
  });

  test("base64 DER uploads are accepted; a GET with a stale If-Match is 412", async () => {
    const other = await createRootCa("Der Root");
    const der = new X509Certificate(other.certPem).raw.toString("base64");
    const r = await upload("der-root", der);
    assert.equal(r.status, 201, r.text);
    assert.equal(resource(r).properties.thumbprint, other.sha1);
    const stale = await call(p, "GET", `${BASE}/der-root`, { headers: { "if-match": "bm90LXRoaXMtb25l" } });
    assert.equal(stale.status, 412);
    const fresh = await call(p, "GET", `${BASE}/der-root`, { headers: { "if-match": resource(r).etag } });
    assert.equal(fresh.status, 200);
  });

  test("PUT on an existing name without If-Match is 412 (If-Match required to update), any case", async () => {
    const again = await upload("contoso-root", ca.certPem);
    assert.equal(again.status, 412, again.text);
    assert.equal(error(again).errorCode, 412401);
    assert.match(error(again).message, /If-Match is required/);
    const otherCase = await upload("Contoso-Root", ca.certPem);
    assert.equal(otherCase.status, 412);
  });

  test("update with the etag: 200, new etag; a stale etag is 412; new content resets isVerified", async () => {
    const first = await upload("updatable", ca.certPem, { isVerified: true });
    assert.equal(first.status, 201);
    assert.equal(resource(first).properties.isVerified, true);
    const etag = resource(first).etag;

    const replacement = await createRootCa("Replacement Root");
    const updated = await upload("updatable", replacement.certPem, {}, { "if-match": etag });
    assert.equal(updated.status, 200, updated.text);
    const u = resource(updated);
    assert.notEqual(u.etag, etag);
    assert.equal(u.properties.thumbprint, replacement.sha1);
    assert.equal(u.properties.subject, "CN=Replacement Root");
    assert.equal(u.properties.isVerified, false, "new content is not verified unless the body says so");
    assert.equal(u.properties.created, resource(first).properties.created);

    const stale = await upload("updatable", ca.certPem, {}, { "if-match": etag });
    assert.equal(stale.status, 412);
    assert.equal(error(stale).errorCode, 412002);

    const star = await upload("updatable", ca.certPem, { isVerified: true }, { "if-match": "*" });
    assert.equal(star.status, 200, star.text);
    assert.equal(resource(star).properties.isVerified, true);
  });

  test("delete requires If-Match: missing 412, stale 412, current 200, then 404", async () => {
    const created = resource(await upload("deletable", ca.certPem));
    const none = await call(p, "DELETE", `${BASE}/deletable`);
    assert.equal(none.status, 412);
    assert.equal(error(none).errorCode, 412401);
    const stale = await call(p, "DELETE", `${BASE}/deletable`, { headers: { "if-match": "c3RhbGU=" } });
    assert.equal(stale.status, 412);
    assert.equal(error(stale).errorCode, 412002);
    const ok = await call(p, "DELETE", `${BASE}/deletable`, { headers: { "if-match": created.etag } });
    assert.equal(ok.status, 200, ok.text);
    assert.equal((await call(p, "GET", `${BASE}/deletable`)).status, 404);
    const again = await call(p, "DELETE", `${BASE}/deletable`, { headers: { "if-match": "*" } });
    assert.equal(again.status, 404);
  });

  test("private keys, garbage, chains, bad names and bad bodies are 400", async () => {
    const withKey = await upload("keyed", `${ca.certPem}\n${ca.keyPem}`);
    assert.equal(withKey.status, 400);
    assert.match(error(withKey).message, /private key/);
    const keyOnly = await upload("keyed", ca.keyPem);
    assert.equal(keyOnly.status, 400);
    assert.match(error(keyOnly).message, /private key/);

    const garbage = await upload("garbage", "this is not a certificate");
    assert.equal(garbage.status, 400);
    assert.equal(error(garbage).errorCode, 400401);
    const notDer = await upload("garbage", Buffer.from("definitely not DER").toString("base64"));
    assert.equal(notDer.status, 400);
    const brokenPem = await upload("garbage", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----");
    assert.equal(brokenPem.status, 400);
    const missing = await call(p, "PUT", `${BASE}/garbage`, { body: json({ isVerified: true }) });
    assert.equal(missing.status, 400);

    const chain = await upload("chain", `${ca.certPem}\n${ca.certPem}`);
    assert.equal(chain.status, 400);
    assert.match(error(chain).message, /exactly one/);

    const badName = await upload("bad%20name!", ca.certPem);
    assert.equal(badName.status, 400);
    const tooLong = await upload("x".repeat(65), ca.certPem);
    assert.equal(tooLong.status, 400);
    const longest = await upload("y".repeat(64), ca.certPem);
    assert.equal(longest.status, 201, longest.text);

    const badFlag = await upload("flag", ca.certPem, { isVerified: "yes" });
    assert.equal(badFlag.status, 400);
    assert.equal((await call(p, "GET", `${BASE}/garbage`)).status, 404, "nothing was stored");
  });

  test("ServiceConfig is required", async () => {
    const anonymous = await call(p, "GET", BASE, { auth: null });
    assert.equal(anonymous.status, 401);
    const reader = await addPolicy(p, "cert-reader", "EnrollmentRead, RegistrationStatusRead");
    const denied = await call(p, "GET", BASE, { connectionString: reader });
    assert.equal(denied.status, 401);
    assert.match(error(denied).message, /ServiceConfig/);
  });

  test("at most 25 certificates per instance; other instances have their own set", async () => {
    const created = await call(p, "PUT", "/provisioningServices/cert-limit", {
      body: json({ location: "local", properties: {} }),
    });
    assert.equal(created.status, 201, created.text);
    const base = "/provisioningServices/cert-limit/certificates";
    for (let i = 0; i < 25; i++) {
      const cert = await createRootCa(`Limit ${i}`);
      const r = await call(p, "PUT", `${base}/c${i}`, { body: json({ certificate: cert.certPem }) });
      assert.equal(r.status, 201, r.text);
    }
    const extra = await call(p, "PUT", `${base}/c25`, { body: json({ certificate: ca.certPem }) });
    assert.equal(extra.status, 409, extra.text);
    assert.equal(error(extra).errorCode, 409401);
    assert.match(error(extra).message, /25/);
    const list = (await call(p, "GET", base)).json() as { value: CertResource[] };
    assert.equal(list.value.length, 25);

    // Updating one of the 25 is still allowed.
    const c0 = resource(await call(p, "GET", `${base}/c0`));
    const upd = await call(p, "PUT", `${base}/c0`, {
      body: json({ certificate: ca.certPem }),
      headers: { "if-match": c0.etag },
    });
    assert.equal(upd.status, 200, upd.text);
    // The primary instance does not see them.
    assert.equal((await call(p, "GET", `${BASE}/c1`)).status, 404);
  });

  test("concurrent uploads cannot overshoot the limit of 25", async () => {
    const created = await call(p, "PUT", "/provisioningServices/cert-race", {
      body: json({ location: "local", properties: {} }),
    });
    assert.equal(created.status, 201, created.text);
    const base = "/provisioningServices/cert-race/certificates";
    const replies = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        call(p, "PUT", `${base}/race-${i}`, { body: json({ certificate: ca.certPem }) }),
      ),
    );
    const statuses = replies.map((r) => r.status).sort();
    assert.deepEqual(statuses, [...Array(25).fill(201), ...Array(5).fill(409)]);
    for (const r of replies.filter((x) => x.status === 409)) assert.equal(error(r).errorCode, 409401);
    const list = (await call(p, "GET", base)).json() as { value: CertResource[] };
    assert.equal(list.value.length, 25);
  });

  describe("proof of possession", () => {
    let current: CertResource;
    let pop: IssuedCertificate;
    before(async () => {
      pop = await createRootCa("Possessed Root");
      const r = await upload("possessed", pop.certPem);
      assert.equal(r.status, 201, r.text);
      current = resource(r);
    });

    const generate = async (etag: string) => {
      const r = await call(p, "POST", `${BASE}/possessed/generateVerificationCode`, { headers: { "if-match": etag } });
      assert.equal(r.status, 200, r.text);
      return resource(r);
    };
    const verify = (certificate: string, etag: string) =>
      call(p, "POST", `${BASE}/possessed/verifyCertificate`, {
        body: json({ certificate }),
        headers: { "if-match": etag },
      });

    test("verify before any code was generated is 400 saying to generate one", async () => {
      const proof = await createVerificationCertificate(pop, "0".repeat(40));
      const r = await verify(proof.certPem, current.etag);
      assert.equal(r.status, 400);
      assert.equal(error(r).errorCode, 400402);
      assert.match(error(r).message, /generate one first/);
    });

    test("generateVerificationCode needs If-Match and returns 40 upper-hex and a new etag", async () => {
      const none = await call(p, "POST", `${BASE}/possessed/generateVerificationCode`);
      assert.equal(none.status, 412);
      assert.equal(error(none).errorCode, 412401);
      const stale = await call(p, "POST", `${BASE}/possessed/generateVerificationCode`, {
        headers: { "if-match": "c3RhbGU=" },
      });
      assert.equal(stale.status, 412);

      const g = await generate(current.etag);
      assert.match(g.properties.verificationCode ?? "", /^[0-9A-F]{40}$/);
      assert.notEqual(g.etag, current.etag);
      assert.equal(g.properties.isVerified, false);
      assert.equal(g.properties.thumbprint, pop.sha1);
      assert.equal(g.properties.certificate, undefined);
      const shown = resource(await call(p, "GET", `${BASE}/possessed`));
      assert.equal(shown.etag, g.etag);
      assert.equal(shown.properties.verificationCode, undefined, "the code is only returned by generate");
      current = g;
    });

    test("a wrong CN, another signer, a stale code or a missing If-Match leave the certificate unverified", async () => {
      const code = current.properties.verificationCode ?? "";
      const wrongCn = await createVerificationCertificate(pop, "1".repeat(40));
      const r1 = await verify(wrongCn.certPem, current.etag);
      assert.equal(r1.status, 400);
      assert.match(error(r1).message, /verification code/);

      const stranger = await createRootCa("Stranger");
      const otherSigner = await createVerificationCertificate(stranger, code);
      const r2 = await verify(otherSigner.certPem, current.etag);
      assert.equal(r2.status, 400);
      assert.match(error(r2).message, /not signed by/);

      const garbage = await verify("not a certificate", current.etag);
      assert.equal(garbage.status, 400);
      assert.equal(error(garbage).errorCode, 400402);

      const good = await createVerificationCertificate(pop, code);
      const noEtag = await call(p, "POST", `${BASE}/possessed/verifyCertificate`, {
        body: json({ certificate: good.certPem }),
      });
      assert.equal(noEtag.status, 412);

      // Regenerate: the old code is superseded.
      const regenerated = await generate(current.etag);
      assert.notEqual(regenerated.properties.verificationCode, code);
      const stale = await verify(good.certPem, regenerated.etag);
      assert.equal(stale.status, 400);
      assert.match(error(stale).message, /verification code/);

      const after = resource(await call(p, "GET", `${BASE}/possessed`));
      assert.equal(after.properties.isVerified, false);
      assert.equal(after.etag, regenerated.etag, "failures change nothing");
      current = regenerated;
    });

    test("a certificate with CN = the code signed by the CA verifies; the code is then used up", async () => {
      const code = current.properties.verificationCode ?? "";
      // Hex is compared case-insensitively.
      const proof = await createVerificationCertificate(pop, code.toLowerCase());
      const r = await verify(proof.certPem, current.etag);
      assert.equal(r.status, 200, r.text);
      const v = resource(r);
      assert.equal(v.properties.isVerified, true);
      assert.notEqual(v.etag, current.etag);
      assert.equal(v.properties.verificationCode, undefined);
      assert.equal(resource(await call(p, "GET", `${BASE}/possessed`)).properties.isVerified, true);

      const replay = await verify(proof.certPem, v.etag);
      assert.equal(replay.status, 400, "the code was cleared");
      assert.match(error(replay).message, /generate one first/);
    });

    test("base64 DER verification certificates are accepted", async () => {
      const fresh = await createRootCa("Der Possessed");
      const created = resource(await upload("der-possessed", fresh.certPem));
      const g = resource(
        await call(p, "POST", `${BASE}/der-possessed/generateVerificationCode`, { headers: { "if-match": "*" } }),
      );
      assert.notEqual(g.etag, created.etag);
      const proof = await createVerificationCertificate(fresh, g.properties.verificationCode ?? "");
      const der = new X509Certificate(proof.certPem).raw.toString("base64");
      const r = await call(p, "POST", `${BASE}/der-possessed/verifyCertificate`, {
        body: json({ certificate: der }),
        headers: { "if-match": g.etag },
      });
      assert.equal(r.status, 200, r.text);
      assert.equal(resource(r).properties.isVerified, true);
    });

    test("isVerified: true on upload skips proof of possession", async () => {
      const self = await createRootCa("Self Attested");
      const r = await upload("self-attested", self.certPem, { isVerified: true });
      assert.equal(r.status, 201);
      assert.equal(resource(r).properties.isVerified, true);
    });
  });
});
