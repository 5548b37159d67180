// CA certificates of a provisioning service instance and their proof of possession
// (management.md §5): `/provisioningServices/{name}/certificates[/{certName}[/generateVerificationCode|
// /verifyCertificate]]`. The management API authenticates the caller (ServiceConfig) and picks the
// instance; this module owns the rest. Only public certificates are stored, and the stored PEM is
// never echoed back.
import { randomBytes, type X509Certificate } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { distinguishedName, parseCertificate, toPem } from "../attestation/x509-info.js";
import { ProvisioError } from "../domain/errors.js";
import { etagMatches, newEtag, nowUtc } from "../domain/etag.js";
import type { CaCertificate, Instance } from "../domain/instance.js";
import { isObject, parseJson } from "../domain/json.js";
import type { ServiceRequest } from "../http/api-request.js";
import { readBody } from "../http/body.js";
import { sendJson } from "../http/respond.js";
import type { InstanceStore } from "../store/store.js";

/** Per instance (management.md §5.1). */
export const MAX_CA_CERTIFICATES = 25;
const NAME_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
export const CERTIFICATE_TYPE = "Microsoft.Devices/ProvisioningServices/Certificates";

export const isValidCertificateName = (name: string): boolean => NAME_PATTERN.test(name);

const invalid = (detail: string): ProvisioError => new ProvisioError("invalidCaCertificate", { detail });
const rfc1123 = (iso: string): string => new Date(iso).toUTCString();

/** `undefined` when the header is absent or empty. */
function ifMatchOf(req: IncomingMessage): string | undefined {
  const v = req.headers["if-match"];
  return v === undefined || v.trim() === "" ? undefined : v;
}

/**
 * A public X.509 certificate from PEM text or base64 DER; anything holding a private key, or
 * more than one certificate, or not a certificate at all, is refused with a reason.
 */
export function parsePublicCertificate(text: unknown, field = "certificate"): X509Certificate {
  if (typeof text !== "string" || text.trim() === "") {
    throw invalid(`'${field}' is required: the PEM text or base64 DER of one X.509 certificate.`);
  }
  if (/PRIVATE KEY/i.test(text)) {
    throw invalid(`'${field}' contains a private key; upload only the public certificate (never the key or a PFX).`);
  }
  const pems = text.match(/-----BEGIN CERTIFICATE-----/g)?.length ?? 0;
  if (pems > 1) throw invalid(`'${field}' holds ${pems} certificates; upload exactly one.`);
  if (pems === 0 && text.includes("-----BEGIN")) {
    throw invalid(`'${field}' is PEM but not a CERTIFICATE; upload the public certificate only.`);
  }
  const cert = parseCertificate(text);
  if (!cert) throw invalid(`'${field}' is neither a PEM certificate nor base64 DER of an X.509 certificate.`);
  return cert;
}

/** The subject's common name, as node:crypto lists it (`CN=...` one attribute a line). */
function commonName(cert: X509Certificate): string | undefined {
  for (const line of cert.subject.split("\n")) if (line.startsWith("CN=")) return line.slice(3);
  return undefined;
}

export class CaCertificates {
  constructor(
    /** Its writes reach the caches X.509 attestation reads through the store's own announcements. */
    private readonly store: InstanceStore,
    /** CA certificates per provisioning service (PROVISIO_MAX_CA_CERTIFICATES); 0 = no limit. */
    private readonly maxCertificates = MAX_CA_CERTIFICATES,
  ) {}

  /** `rest`: the segments after `/provisioningServices/{name}/certificates`. */
  async handle(r: ServiceRequest, instance: Instance, rest: string[], restLower: string[]): Promise<void> {
    const method = r.req.method ?? "GET";
    const certName = rest[0];
    if (certName === undefined) {
      if (method !== "GET") throw this.notAllowed(r, method);
      const all = await this.store.listCaCertificates(instance.idScope);
      // `?includeCertificate=true` (a Provisio extension, for `provisio export`): the PEM too.
      const withPem = /^true$/i.test(r.path.query.get("includeCertificate") ?? "");
      const extra = (c: CaCertificate) => (withPem ? { certificate: c.certificatePem } : {});
      return sendJson(r.res, 200, { value: all.map((c) => this.resource(instance, c, extra(c))) });
    }
    if (rest.length === 1) {
      if (method === "GET") return this.get(r, instance, certName);
      if (method === "PUT") return this.put(r, instance, certName);
      if (method === "DELETE") return this.delete(r, instance, certName);
      throw this.notAllowed(r, method);
    }
    const action = restLower[1];
    if (rest.length === 2 && (action === "generateverificationcode" || action === "verifycertificate")) {
      if (method !== "POST") throw this.notAllowed(r, method);
      return action === "generateverificationcode"
        ? this.generateCode(r, instance, certName)
        : this.verify(r, instance, certName);
    }
    throw new ProvisioError("unknownRoute", { method, path: `/${r.path.segments.join("/")}` });
  }

  private notAllowed(r: ServiceRequest, method: string): ProvisioError {
    return new ProvisioError("methodNotAllowed", { method, path: `/${r.path.segments.join("/")}` });
  }

  resource(instance: Instance, c: CaCertificate, extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      id: `/provisioningServices/${instance.name}/certificates/${c.name}`,
      name: c.name,
      type: CERTIFICATE_TYPE,
      etag: c.etag,
      properties: {
        ...extra,
        subject: c.subject,
        expiry: rfc1123(c.expiry),
        thumbprint: c.thumbprint,
        isVerified: c.isVerified,
        // `certificate` is deliberately absent: the stored PEM is never echoed back.
        created: rfc1123(c.created),
        updated: rfc1123(c.updated),
      },
    };
  }

  private async existing(instance: Instance, name: string): Promise<CaCertificate> {
    const cert = await this.store.getCaCertificate(instance.idScope, name);
    if (!cert) throw new ProvisioError("caCertificateNotFound", { name, instance: instance.name });
    return cert;
  }

  /** The If-Match a change needs: required, and it must accept the stored etag. */
  private requireIfMatch(r: ServiceRequest, cert: CaCertificate, operation: string): string {
    const ifMatch = ifMatchOf(r.req);
    if (ifMatch === undefined) throw new ProvisioError("ifMatchRequired", { operation, name: cert.name });
    if (!etagMatches(ifMatch, cert.etag)) throw new ProvisioError("etagMismatch", { id: cert.name });
    return ifMatch;
  }

  /** Conditional write; a concurrent change between read and write is an etag mismatch. */
  private async write(instance: Instance, cert: CaCertificate, ifMatch: string): Promise<void> {
    const result = await this.store.putCaCertificate(instance.idScope, cert, { etag: ifMatch });
    if (!result.ok) {
      if (result.reason === "missing") {
        throw new ProvisioError("caCertificateNotFound", { name: cert.name, instance: instance.name });
      }
      throw new ProvisioError("etagMismatch", { id: cert.name });
    }
  }

  private async get(r: ServiceRequest, instance: Instance, name: string): Promise<void> {
    const cert = await this.existing(instance, name);
    const ifMatch = ifMatchOf(r.req);
    if (ifMatch !== undefined && !etagMatches(ifMatch, cert.etag)) {
      throw new ProvisioError("etagMismatch", { id: cert.name });
    }
    sendJson(r.res, 200, this.resource(instance, cert));
  }

  private async put(r: ServiceRequest, instance: Instance, name: string): Promise<void> {
    if (!isValidCertificateName(name)) {
      throw new ProvisioError("invalidBody", {
        detail: `'${name}' is not a valid certificate name: use 1-64 letters, digits, '-', '_' or '.'.`,
      });
    }
    const body = parseJson(await readBody(r.req));
    if (!isObject(body)) throw invalid("the body must be a JSON object {certificate, isVerified}.");
    // CertificateBodyDescription is flat; tolerate an ARM-style `properties` wrapper too.
    const fields = isObject(body.properties) && body.certificate === undefined ? body.properties : body;
    const isVerified = fields.isVerified;
    if (isVerified !== undefined && isVerified !== null && typeof isVerified !== "boolean") {
      throw invalid("'isVerified' must be true or false.");
    }
    const x509 = parsePublicCertificate(fields.certificate);
    const now = nowUtc();
    const content = {
      certificatePem: toPem(x509),
      subject: distinguishedName(x509.subject),
      thumbprint: x509.fingerprint.replaceAll(":", "").toUpperCase(),
      expiry: new Date(x509.validTo).toISOString(),
    };
    const existing = await this.store.getCaCertificate(instance.idScope, name);

    if (!existing) {
      // If-Match is ignored on create (management.md §5.2).
      const cert: CaCertificate = {
        name,
        ...content,
        isVerified: isVerified === true,
        created: now,
        updated: now,
        etag: newEtag(),
      };
      // The limit is checked in the same atomic step as the insert: concurrent uploads cannot overshoot it.
      const limit = this.maxCertificates > 0 ? this.maxCertificates : Number.MAX_SAFE_INTEGER;
      const result = await this.store.addCaCertificate(instance.idScope, cert, limit);
      if (!result.ok && result.reason === "full") {
        throw new ProvisioError("tooManyCaCertificates", { instance: instance.name, limit });
      }
      // Created by someone else in the meantime: this PUT is now an update, which needs If-Match.
      if (!result.ok) throw new ProvisioError("ifMatchRequired", { operation: "update", name });
      return sendJson(r.res, 201, this.resource(instance, cert));
    }

    const ifMatch = this.requireIfMatch(r, existing, "update");
    const changed = content.thumbprint !== existing.thumbprint;
    const { verificationCode, ...rest } = existing;
    const cert: CaCertificate = {
      ...rest,
      ...content,
      // New content: verified only if the body self-attests; a pending code belonged to the old key.
      isVerified: changed ? isVerified === true : typeof isVerified === "boolean" ? isVerified : existing.isVerified,
      ...(!changed && verificationCode !== undefined ? { verificationCode } : {}),
      updated: now,
      etag: newEtag(),
    };
    await this.write(instance, cert, ifMatch);
    sendJson(r.res, 200, this.resource(instance, cert));
  }

  private async delete(r: ServiceRequest, instance: Instance, name: string): Promise<void> {
    const cert = await this.existing(instance, name);
    const ifMatch = this.requireIfMatch(r, cert, "delete");
    const result = await this.store.deleteCaCertificate(instance.idScope, cert.name, { etag: ifMatch });
    if (!result.ok) {
      if (result.reason === "missing")
        throw new ProvisioError("caCertificateNotFound", { name, instance: instance.name });
      throw new ProvisioError("etagMismatch", { id: cert.name });
    }
    sendJson(r.res, 200, {});
  }

  private async generateCode(r: ServiceRequest, instance: Instance, name: string): Promise<void> {
    const existing = await this.existing(instance, name);
    const ifMatch = this.requireIfMatch(r, existing, "generate a verification code for");
    const cert: CaCertificate = {
      ...existing,
      verificationCode: randomBytes(20).toString("hex").toUpperCase(),
      updated: nowUtc(),
      etag: newEtag(),
    };
    await this.write(instance, cert, ifMatch);
    sendJson(r.res, 200, this.resource(instance, cert, { verificationCode: cert.verificationCode }));
  }

  private async verify(r: ServiceRequest, instance: Instance, name: string): Promise<void> {
    const existing = await this.existing(instance, name);
    const ifMatch = this.requireIfMatch(r, existing, "verify");
    const body = parseJson(await readBody(r.req));
    if (!isObject(body)) throw invalid("the body must be a JSON object {certificate}.");
    const fail = (reason: string): ProvisioError => new ProvisioError("verificationFailed", { name, reason });

    let proof: X509Certificate;
    try {
      proof = parsePublicCertificate(body.certificate);
    } catch (err) {
      throw err instanceof ProvisioError ? fail(err.message.replace(/^Invalid certificate: /, "")) : err;
    }
    const code = existing.verificationCode;
    if (code === undefined) {
      throw fail("no verification code is pending; generate one first (generateVerificationCode), then sign it.");
    }
    const cn = commonName(proof);
    if (cn === undefined || cn.toUpperCase() !== code.toUpperCase()) {
      throw fail(
        `the certificate's subject CN '${cn ?? ""}' is not the current verification code; codes are superseded by newer ones.`,
      );
    }
    const ca = parseCertificate(existing.certificatePem);
    let signed = false;
    try {
      signed = ca !== undefined && proof.verify(ca.publicKey);
    } catch {
      signed = false;
    }
    if (!signed) throw fail(`the certificate is not signed by the private key of '${existing.subject}'.`);
    const now = Date.now();
    const from = Date.parse(proof.validFrom);
    const to = Date.parse(proof.validTo);
    if (now < from) throw fail(`the certificate is not valid before ${new Date(from).toUTCString()}.`);
    if (now > to) throw fail(`the certificate expired on ${new Date(to).toUTCString()}.`);

    const { verificationCode: _used, ...rest } = existing;
    const cert: CaCertificate = { ...rest, isVerified: true, updated: nowUtc(), etag: newEtag() };
    await this.write(instance, cert, ifMatch);
    sendJson(r.res, 200, this.resource(instance, cert));
  }
}
