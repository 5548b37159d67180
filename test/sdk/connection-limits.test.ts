// Connections and file descriptors (issue "Reliability under faults" 3): idle sockets are closed
// within the timeouts on every listener, a 413 closes its connection, and under a low open-files
// limit a flood of idle sockets does not keep real devices out.
import assert from "node:assert/strict";
import { once } from "node:events";
import net from "node:net";
import { after, before, describe, test } from "node:test";
import tls from "node:tls";
import { httpTransport, registerWithKey } from "../support/device-clients.js";
import { enrollIndividual } from "../support/enrollments.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { serviceClient } from "../support/service-client.js";

/** Milliseconds until the server closes `socket`. */
async function closedAfter(socket: net.Socket): Promise<number> {
  const started = Date.now();
  socket.on("error", () => undefined);
  socket.resume();
  await once(socket, "close");
  return Date.now() - started;
}

const tcp = async (port: number, localAddress = "127.0.0.1"): Promise<net.Socket> => {
  const s = net.connect({ port, host: "127.0.0.1", localAddress });
  await once(s, "connect");
  return s;
};

describe("connection timeouts", () => {
  let p: ProvisioProcess;
  before(async () => {
    p = await startProvisio();
  });
  after(async () => {
    await p.dispose();
  });

  test("a TCP connection that never says hello is closed within the 10 s handshake timeout, on every listener", async () => {
    const ports = [p.info.ports.https, p.info.ports.mqtt, p.info.ports.amqp];
    const times = await Promise.all(ports.map(async (port) => closedAfter(await tcp(port))));
    for (const ms of times) assert.ok(ms >= 9_000 && ms <= 13_000, `closed after ${ms} ms`);
  });

  test("an HTTPS connection that never sends a request is closed within about 10 s", async () => {
    const s = tls.connect({ port: p.info.ports.https, host: "127.0.0.1", ca: p.ca, servername: "localhost" });
    await once(s, "secureConnect");
    const ms = await closedAfter(s);
    assert.ok(ms <= 13_000, `closed after ${ms} ms`);
  });

  test("a request refused as too large closes its connection at once, though its body keeps coming", async () => {
    const s = tls.connect({ port: p.info.ports.https, host: "127.0.0.1", ca: p.ca, servername: "localhost" });
    await once(s, "secureConnect");
    let reply = "";
    s.on("data", (d: Buffer) => {
      reply += d.toString();
    });
    s.write(
      `PUT /${p.info.idScope}/registrations/big/register?api-version=2019-03-31 HTTP/1.1\r\nHost: localhost\r\n` +
        "Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n",
    );
    const trickle = setInterval(() => s.writable && s.write("x".repeat(100)), 100);
    try {
      const ms = await closedAfter(s);
      assert.match(reply, /^HTTP\/1\.1 413/);
      assert.match(reply, /connection: close/i);
      assert.ok(ms < 3_000, `closed after ${ms} ms`);
    } finally {
      clearInterval(trickle);
    }
  });
});

describe("a flood of idle sockets under a low open-files limit", () => {
  let p: ProvisioProcess;
  before(async () => {
    // 256 open files: about 64 connections a listener once the reserve is kept.
    p = await startProvisio({ nofile: 256, env: { PROVISIO_MAX_CONNECTIONS_PER_ADDRESS: "1000" } });
  });
  after(async () => {
    await p.dispose();
  });

  test("devices still register while 400 idle sockets from elsewhere keep arriving", async () => {
    const key = await enrollIndividual(serviceClient(p), "through-the-flood");
    const flood: net.Socket[] = [];
    let flooding = true;
    const keepFlooding = (async () => {
      while (flooding) {
        if (flood.length < 400) {
          const s = net.connect({ port: p.info.ports.https, host: "127.0.0.1", localAddress: "127.0.0.3" });
          s.on("error", () => undefined);
          s.on("close", () => flood.splice(flood.indexOf(s), 1));
          flood.push(s);
        }
        await new Promise((r) => setImmediate(r));
      }
    })();
    try {
      await new Promise((r) => setTimeout(r, 1_000));
      for (let i = 0; i < 5; i++) {
        const r = await registerWithKey(p, httpTransport(p, { localAddress: "127.0.0.2" }), "through-the-flood", key);
        assert.equal(r.status, "assigned");
      }
    } finally {
      flooding = false;
      await keepFlooding;
      for (const s of flood) s.destroy();
    }
    assert.equal(p.child.exitCode, null, "the server is still running");
  });
});

describe("connections per source address", () => {
  let p: ProvisioProcess;
  before(async () => {
    p = await startProvisio({ env: { PROVISIO_MAX_CONNECTIONS_PER_ADDRESS: "20" } });
  });
  after(async () => {
    await p.dispose();
  });

  test("past the per-address cap new connections from that address are closed; other addresses get in", async () => {
    const held = await Promise.all(Array.from({ length: 20 }, () => tcp(p.info.ports.mqtt, "127.0.0.4")));
    const refused = await tcp(p.info.ports.mqtt, "127.0.0.4");
    assert.ok((await closedAfter(refused)) < 1_000, "closed at accept");
    const other = await tcp(p.info.ports.mqtt, "127.0.0.5");
    const stillOpen = await Promise.race([
      once(other, "close").then(() => false),
      new Promise<boolean>((r) => setTimeout(() => r(true), 500)),
    ]);
    assert.ok(stillOpen, "another address is let in");
    for (const s of [...held, other]) s.destroy();
  });
});
