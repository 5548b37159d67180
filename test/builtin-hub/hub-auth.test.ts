// Device authentication on the built-in hub (iothub-api.md §6.2, §10.3), from fixtures: the
// thumbprint check of a self-signed identity and the SAS-or-certificate choice of HTTPS requests.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import { createSasToken } from "../../src/attestation/sas-token.js";
import { authenticateDeviceRequest, certificateAuthenticates } from "../../src/builtin-hub/hub-auth.js";
import { ProvisioError } from "../../src/domain/errors.js";
import type { BuiltinHub, DeviceIdentity } from "../../src/domain/hub.js";

// Any bytes stand for a DER certificate here: only their digests are compared.
const leaf = Buffer.from("a device certificate, DER in real life");
const other = Buffer.from("somebody else's certificate");
const sha1 = createHash("sha1").update(leaf).digest("hex");
const sha256 = createHash("sha256").update(leaf).digest("hex");
const KEY = Buffer.alloc(32, 7).toString("base64");
const hub: BuiltinHub = { name: "hub-1", hostName: "hub-1.localhost", policies: [] };

function identity(
  type: DeviceIdentity["authentication"]["type"],
  primaryThumbprint: string | null,
  secondaryThumbprint: string | null = null,
): DeviceIdentity {
  const t = "2026-01-01T00:00:00Z";
  return {
    deviceId: "dev-1",
    generationId: "1",
    etag: "e",
    status: "enabled",
    statusReason: null,
    statusUpdatedTime: t,
    connectionState: "Disconnected",
    connectionStateUpdatedTime: t,
    lastActivityTime: t,
    cloudToDeviceMessageCount: 0,
    authentication: {
      type,
      symmetricKey: type === "sas" ? { primaryKey: KEY, secondaryKey: KEY } : { primaryKey: null, secondaryKey: null },
      x509Thumbprint: { primaryThumbprint, secondaryThumbprint },
    },
    capabilities: { iotEdge: false },
  };
}

test("a self-signed identity accepts its SHA-1 or SHA-256 thumbprint, primary or secondary, any case or colons", () => {
  assert.equal(certificateAuthenticates(identity("selfSigned", sha1.toUpperCase()), leaf), true);
  assert.equal(certificateAuthenticates(identity("selfSigned", "0".repeat(40), sha256), leaf), true);
  const colons = sha1.match(/../g)?.join(":") ?? "";
  assert.equal(certificateAuthenticates(identity("selfSigned", colons), leaf), true);
});

test("another certificate, no certificate, no thumbprints or another authentication type are refused", () => {
  assert.equal(certificateAuthenticates(identity("selfSigned", sha1), other), false);
  assert.equal(certificateAuthenticates(identity("selfSigned", sha1), undefined), false);
  assert.equal(certificateAuthenticates(identity("selfSigned", null, null), leaf), false);
  assert.equal(certificateAuthenticates(identity("sas", sha1), leaf), false);
});

test("HTTPS device requests: a SAS token decides when sent; else the client certificate; else 401", () => {
  const token = createSasToken(KEY, `${hub.hostName}/devices/dev-1`, Math.floor(Date.now() / 1000) + 600);
  assert.doesNotThrow(() => authenticateDeviceRequest(token, undefined, hub, identity("sas", null)));
  assert.doesNotThrow(() => authenticateDeviceRequest(undefined, leaf, hub, identity("selfSigned", sha1)));
  const refused = (f: () => void, detail: RegExp) =>
    assert.throws(f, (e: unknown) => e instanceof ProvisioError && e.status === 401 && detail.test(e.message));
  refused(() => authenticateDeviceRequest(undefined, other, hub, identity("selfSigned", sha1)), /thumbprint/);
  refused(() => authenticateDeviceRequest(undefined, leaf, hub, identity("sas", null)), /authenticates with sas/);
  refused(
    () => authenticateDeviceRequest(undefined, undefined, hub, identity("sas", null)),
    /no SharedAccessSignature/,
  );
  // A token that does not verify is refused even when a good certificate came along.
  refused(
    () => authenticateDeviceRequest("SharedAccessSignature sr=x&sig=y&se=1", leaf, hub, identity("selfSigned", sha1)),
    /expired|token/,
  );
});
