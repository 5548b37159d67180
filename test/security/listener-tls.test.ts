// Provisio's listeners never resume TLS sessions (security/listener-tls.ts), also after the server
// certificate is reissued for a new instance: Server.setSecureContext forgets options not given.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { after, before, test } from "node:test";
import { connect, type PeerCertificate } from "node:tls";
import { call } from "../support/management.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";

let p: ProvisioProcess;
before(async () => {
  p = await startProvisio();
});
after(async () => {
  await p.dispose();
});

interface Handshake {
  session: Buffer | undefined;
  resumed: boolean;
  cert: PeerCertificate;
}

/** One TLS connection offering `session`; kept open briefly so TLS 1.3 session tickets arrive. */
function handshake(port: number, session?: Buffer): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    let latest: Buffer | undefined;
    const socket = connect({ host: "127.0.0.1", port, servername: "localhost", ca: p.ca, session });
    socket.on("session", (s: Buffer) => {
      latest = s;
    });
    socket.on("secureConnect", () => {
      const resumed = socket.isSessionReused();
      const cert = socket.getPeerCertificate();
      setTimeout(() => socket.end(), 50);
      socket.on("close", () => resolve({ session: latest, resumed, cert }));
    });
    socket.on("error", reject);
  });
}

async function assertNoResumption(port: number): Promise<PeerCertificate> {
  const first = await handshake(port);
  const second = await handshake(port, first.session);
  assert.equal(second.resumed, false, `port ${port} resumed a session`);
  return second.cert;
}

test("no listener resumes a TLS session, before and after the server certificate is reissued", async () => {
  for (const port of [p.info.ports.https, p.info.ports.mqtt, p.info.ports.amqp]) await assertNoResumption(port);

  // A new instance brings a new host name: the certificate is reissued and swapped into every listener.
  const created = await call(p, "PUT", "/provisioningServices/tls-swap", {
    body: JSON.stringify({ location: "local", properties: {} }),
  });
  assert.equal(created.status, 201, created.text);
  for (const port of [p.info.ports.https, p.info.ports.mqtt, p.info.ports.amqp]) {
    const cert = await assertNoResumption(port);
    assert.match(new X509Certificate(cert.raw).subjectAltName ?? "", /DNS:tls-swap\.localhost/);
  }
});
