// Reading a client's chain must leave the TLS session's own copy alone: on Node 20,
// getPeerX509Certificate() takes the intermediates out of it and never frees them, which leaked
// ~5 KB per X.509 connection. A session that still holds its intermediates after the read is the
// deterministic sign that nothing was taken (and so nothing leaked).
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { connect, createServer, type TLSSocket } from "node:tls";
import { createDeviceCertificate, createIntermediateCa, createRootCa } from "../../src/security/cert-factory.js";
import { peerCertificateChain, peerLeafCertificate } from "../../src/security/tls-peer.js";

/**
 * The server side's view of one client connection: the leaf alone (read twice), our chain (read
 * twice), then the session's; and how often each read went to the TLS session.
 */
async function serverView(client: { cert?: string; key?: string }) {
  const server = createServer({ ...(await serverTls()), requestCert: true, rejectUnauthorized: false });
  const seen = new Promise<{
    leaf: Buffer | undefined;
    leafAgain: Buffer | undefined;
    sessionReads: number;
    first: Buffer[];
    second: Buffer[];
    sessionIntermediate: Buffer | undefined;
  }>((resolve) => {
    server.once("secureConnection", (socket: TLSSocket) => {
      const read = socket.getPeerCertificate.bind(socket);
      let sessionReads = 0;
      socket.getPeerCertificate = ((detailed?: boolean) => {
        sessionReads++;
        return read(detailed === true);
      }) as TLSSocket["getPeerCertificate"];
      const leaf = peerLeafCertificate(socket);
      const leafAgain = peerLeafCertificate(socket);
      const first = peerCertificateChain(socket);
      const second = peerCertificateChain(socket);
      const reads = sessionReads;
      const detailed = read(true);
      const issuer = detailed.issuerCertificate;
      const sessionIntermediate = issuer && issuer !== detailed ? issuer.raw : undefined;
      resolve({ leaf, leafAgain, sessionReads: reads, first, second, sessionIntermediate });
      socket.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const socket = connect({
    host: "127.0.0.1",
    port: (server.address() as AddressInfo).port,
    rejectUnauthorized: false,
    ...client,
  });
  socket.on("error", () => undefined);
  socket.resume();
  try {
    return await seen;
  } finally {
    socket.destroy();
    server.close();
  }
}

let tls: { key: string; cert: string } | undefined;
async function serverTls() {
  if (!tls) {
    const root = await createRootCa("tls-peer test server");
    tls = { key: root.keyPem, cert: root.certPem };
  }
  return tls;
}

const derOf = (pem: string): Buffer => Buffer.from(pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");

test("leaf + intermediate: both read, on every call, and the session keeps its intermediate", async () => {
  const root = await createRootCa("tls-peer root");
  const intermediate = await createIntermediateCa(root, "tls-peer intermediate");
  const leaf = await createDeviceCertificate(intermediate, "tls-peer-device");
  const view = await serverView({ cert: leaf.certPem + intermediate.certPem, key: leaf.keyPem });
  assert.deepEqual(view.leaf, derOf(leaf.certPem));
  assert.deepEqual(view.leafAgain, view.leaf);
  assert.deepEqual(view.first, [derOf(leaf.certPem), derOf(intermediate.certPem)]);
  assert.equal(view.sessionReads, 2, "one abbreviated read for the leaf, one detailed read for the chain");
  assert.deepEqual(view.second, view.first);
  assert.deepEqual(view.sessionIntermediate, derOf(intermediate.certPem));
});

test("a leaf alone is a chain of one; no certificate is an empty chain", async () => {
  const root = await createRootCa("tls-peer root 2");
  const leaf = await createDeviceCertificate(root, "tls-peer-device-2");
  const alone = await serverView({ cert: leaf.certPem, key: leaf.keyPem });
  assert.deepEqual(alone.first, [derOf(leaf.certPem)]);
  assert.deepEqual(alone.leaf, derOf(leaf.certPem));
  const none = await serverView({});
  assert.deepEqual(none.first, []);
  assert.equal(none.leaf, undefined);
});
