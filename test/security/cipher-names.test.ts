import assert from "node:assert/strict";
import { test } from "node:test";
import { cipherList, opensslCipherName } from "../../src/security/cipher-names.js";

test("IANA suite names become OpenSSL's; others pass unchanged", () => {
  const cases: [string, string][] = [
    ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"],
    ["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384"],
    ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "ECDHE-RSA-AES128-SHA256"],
    ["TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", "ECDHE-RSA-AES256-SHA384"],
    ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"],
    ["TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA"],
    ["TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305"],
    ["TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256"],
    ["TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA"],
    ["tls_ecdhe_rsa_with_aes_128_gcm_sha256", "ECDHE-RSA-AES128-GCM-SHA256"],
    ["TLS_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"],
    ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256"],
  ];
  for (const [iana, openssl] of cases) assert.equal(opensslCipherName(iana), openssl, iana);
  assert.equal(
    cipherList(["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "AES256-SHA"]),
    "ECDHE-RSA-AES128-GCM-SHA256:AES256-SHA",
  );
});
