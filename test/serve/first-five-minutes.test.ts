// What a newcomer sees (issue "The first five minutes"): the banner of `provisio serve` on a
// terminal (a real pseudo-terminal, through util-linux's `script`), JSON lines everywhere else,
// `--log-format`, `provisio status`, and the first-run mistakes' messages.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import deviceSdk from "azure-iot-device";
import deviceMqtt from "azure-iot-device-mqtt";
import { createSasToken } from "../../src/attestation/sas-token.js";
import type { ServeInfo } from "../../src/service.js";
import { deriveKey, httpTransport, registerWithKey } from "../support/device-clients.js";
import { enrollGroup } from "../support/enrollments.js";
import { call } from "../support/management.js";
import {
  BIN,
  LOOPBACK_ANY_PORTS,
  newDataDir,
  type ProvisioProcess,
  startProvisio,
} from "../support/provisio-process.js";
import { runProvisio } from "../support/run-cli.js";
import { serviceClient } from "../support/service-client.js";
import { until } from "../support/until.js";

const { Client } = deviceSdk;
const { Mqtt } = deviceMqtt;

const EPHEMERAL = LOOPBACK_ANY_PORTS;
const ESC = String.fromCharCode(27);
/** The text without terminal colour codes. */
const stripAnsi = (s: string): string => s.replace(new RegExp(`${ESC}\\[[0-9;]*[A-Za-z]`, "g"), "");

interface Served {
  child: ChildProcess;
  output(): string;
  info(): ServeInfo;
  stop(): Promise<void>;
}

/**
 * `provisio serve` with stdout a terminal (`script` gives it a pseudo-terminal) or a pipe;
 * resolves once provisio.json is written and `ready` is in the output.
 */
async function serve(dataDir: string, args: string[], how: "terminal" | "pipe", ready: RegExp): Promise<Served> {
  const command = [process.execPath, BIN, "serve", "--data-dir", dataDir, ...EPHEMERAL, ...args];
  const child =
    how === "terminal"
      ? spawn("script", ["-qfec", command.map((a) => `'${a}'`).join(" "), "/dev/null"], {
          detached: true,
          env: { ...process.env, TERM: "dumb" },
        })
      : spawn(command[0] as string, command.slice(1), { detached: true });
  let out = "";
  child.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const infoFile = join(dataDir, "provisio.json");
  try {
    await until(async () => existsSync(infoFile) && ready.test(stripAnsi(out)), 20_000, "serve to be ready");
  } catch (err) {
    throw new Error(`${(err as Error).message}; it wrote:\n${out}`);
  }
  return {
    child,
    output: () => stripAnsi(out).replace(/\r/g, ""),
    info: () => JSON.parse(readFileSync(infoFile, "utf8")) as ServeInfo,
    async stop() {
      const closed = new Promise((resolve) => child.once("close", resolve));
      try {
        process.kill(-(child.pid as number), "SIGTERM"); // the group: `script` and serve under it
      } catch {}
      await closed;
    },
  };
}

describe("provisio serve on a terminal", () => {
  test("prints a banner once every listener accepts: ID scope, endpoints, console, hubs, files, a next command; no secret", async () => {
    const dataDir = newDataDir();
    const s = await serve(dataDir, [], "terminal", /Try next/);
    try {
      const out = s.output();
      const info = s.info();
      const https = `localhost:${info.ports.https}`;
      for (const expected of [
        `ID scope            ${info.idScope}`,
        `HTTPS     https://${https}`,
        `MQTT      mqtts://localhost:${info.ports.mqtt}`,
        `MQTT-WS   wss://${https}/$iothub/websocket`,
        `AMQP      amqps://localhost:${info.ports.amqp}`,
        `AMQP-WS   wss://${https}/$iothub/websocket`,
        `Service endpoint    https://${https}`,
        `Web console         https://${https}/`,
        `hub-1  hub-1.localhost`,
        `Metrics             http://127.0.0.1:${info.ports.metrics}/metrics`,
        `Settings            ${dataDir}/provisio.json`,
        `CA devices trust    ${info.caFile}`,
        `npx provisio device simulate --count 10 --data-dir ${dataDir}`,
      ]) {
        assert.ok(out.includes(expected), `the banner shows '${expected}':\n${out}`);
      }
      assert.doesNotMatch(out, /SharedAccessKey=/, "no key unless asked");
      // Logs on a terminal are readable lines, not JSON.
      assert.match(out, /INFO.*provisio is serving/);
      assert.doesNotMatch(out, /^\{"level"/m);
    } finally {
      await s.stop();
    }
  });

  test("--show-secrets adds the connection strings; --log-format json keeps JSON lines and no banner", async () => {
    const dataDir = newDataDir();
    const shown = await serve(dataDir, ["--show-secrets"], "terminal", /Try next/);
    try {
      const info = shown.info();
      assert.ok(shown.output().includes(info.serviceConnectionString));
      assert.ok(shown.output().includes(info.hubs[0]?.connectionString ?? "missing"));
    } finally {
      await shown.stop();
    }
    const json = await serve(dataDir, ["--log-format", "json"], "terminal", /provisio is serving/);
    try {
      const lines = json.output().trim().split("\n");
      for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), `a JSON line: ${line}`);
      assert.doesNotMatch(json.output(), /Try next/);
    } finally {
      await json.stop();
    }
  });
});

describe("provisio serve elsewhere", () => {
  test("stdout a pipe: JSON lines and no banner; --log-format pretty asks for both", async () => {
    const dataDir = newDataDir();
    const piped = await serve(dataDir, [], "pipe", /provisio is serving/);
    try {
      const lines = piped.output().trim().split("\n");
      const serving = lines
        .map((l) => JSON.parse(l) as { msg: string; idScope?: string })
        .find((l) => l.msg === "provisio is serving");
      assert.equal(serving?.idScope, piped.info().idScope);
      assert.doesNotMatch(piped.output(), /Try next/);
    } finally {
      await piped.stop();
    }
    const pretty = await serve(dataDir, ["--log-format", "pretty"], "pipe", /Try next/);
    await pretty.stop();
    assert.match(pretty.output(), /INFO.*provisio is serving/);
  });

  test("a log format that does not exist is refused, naming the choices", async () => {
    const r = await runProvisio(["serve", "--data-dir", newDataDir(), ...EPHEMERAL, "--log-format", "xml"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--log-format must be one of auto, json, pretty, not 'xml'/);
  });
});

describe("provisio status", () => {
  let p: ProvisioProcess;
  before(async () => {
    p = await startProvisio();
  });
  after(() => p?.dispose());

  test("shows the running service with live counts of enrollments, registrations and connected devices", async () => {
    const groupKey = await enrollGroup(serviceClient(p), "status-group");
    await registerWithKey(p, httpTransport(p), "status-device", deriveKey(groupKey, "status-device"));
    // The device connects to its hub over MQTT and stays connected.
    const hub = p.info.hubs[0];
    assert.ok(hub);
    const device = Client.fromConnectionString(
      `HostName=${hub.hostName};DeviceId=status-device;SharedAccessKey=${deriveKey(groupKey, "status-device")};GatewayHostName=127.0.0.1:${p.info.ports.mqtt}`,
      Mqtt,
    );
    await device.setOptions({ ca: p.ca.toString() });
    await device.open();
    try {
      const r = await runProvisio(["status", "--data-dir", p.dataDir]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`Provisio is running \\(data: ${p.dataDir}\\)`));
      assert.match(r.stdout, new RegExp(`ID scope\\s+${p.info.idScope}`));
      assert.match(r.stdout, /Enrollments\s+0 individual, 1 groups/);
      assert.match(r.stdout, /Registrations\s+1\n/);
      assert.match(r.stdout, /Connected devices\s+1 on the built-in hubs/);
      assert.doesNotMatch(r.stdout, /SharedAccessKey=/);

      const json = await runProvisio(["status", "--data-dir", p.dataDir, "--output", "json"]);
      const body = JSON.parse(json.stdout) as { running: boolean; idScope: string; counts: Record<string, number> };
      assert.equal(body.running, true);
      assert.equal(body.idScope, p.info.idScope);
      assert.deepEqual(body.counts, { enrollments: 0, groups: 1, registrations: 1, connected: 1 });
      assert.doesNotMatch(json.stdout, /SharedAccessKey=/);
    } finally {
      await device.close();
    }
  });

  test("says clearly when none is running for the data directory (exit code 3)", async () => {
    const never = await runProvisio(["status", "--data-dir", join(newDataDir(), "empty")]);
    assert.equal(never.code, 3);
    assert.match(
      never.stderr,
      /No Provisio has served from .*empty \(it has no provisio\.json\)\. Start one with: npx provisio serve --data-dir/,
    );

    const dataDir = newDataDir();
    const q = await startProvisio({ dataDir });
    await q.stop();
    const stopped = await runProvisio(["status", "--data-dir", dataDir]);
    assert.equal(stopped.code, 3);
    assert.match(
      stopped.stderr,
      /No Provisio is running for .*: nothing answers at localhost:\d+, where its provisio\.json says it served/,
    );
  });
});

describe("first-run mistakes get messages that say what to do", () => {
  test("a port already in use names the flag and the process holding it", async () => {
    const holder = net.createServer();
    holder.listen(0, "127.0.0.1");
    await new Promise((resolve) => holder.once("listening", resolve));
    const port = (holder.address() as net.AddressInfo).port;
    try {
      const r = await runProvisio([
        "serve",
        "--data-dir",
        newDataDir(),
        ...EPHEMERAL.filter((a, i, all) => !(a === "--mqtt-port" || all[i - 1] === "--mqtt-port")),
        "--mqtt-port",
        String(port),
      ]);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        new RegExp(
          `Port ${port} on 127.0.0.1 is already in use by process ${process.pid} \\(.*\\): stop that, or choose another MQTT port with --mqtt-port \\(PROVISIO_MQTT_PORT\\) \\(0 lets the system pick one\\)`,
        ),
      );
    } finally {
      holder.close();
    }
  });

  test("a data directory that cannot be written", async () => {
    const file = join(newDataDir(), "not-a-directory");
    writeFileSync(file, "");
    const r = await runProvisio(["serve", "--data-dir", join(file, "data"), ...EPHEMERAL]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /The data directory .*not-a-directory\/data cannot be written \(a part of that path is a file, not a directory\)\. Choose one this user can write with --data-dir \(PROVISIO_DATA_DIR\)\./,
    );
  });

  test("a device whose clock is far behind is told its token expired, when, and to check its clock", async () => {
    const p = await startProvisio();
    try {
      const groupKey = await enrollGroup(serviceClient(p), "clock-group");
      const id = "clock-device";
      const se = Math.floor(Date.now() / 1000) - 3 * 3600; // signed by a clock three hours behind
      const token = createSasToken(
        deriveKey(groupKey, id),
        `${p.info.idScope}/registrations/${id}`,
        se,
        "registration",
      );
      const r = await call(p, "PUT", `/${p.info.idScope}/registrations/${id}/register?api-version=2021-06-01`, {
        body: JSON.stringify({ registrationId: id }),
        auth: token,
      });
      assert.equal(r.status, 401);
      assert.match(
        r.text,
        /the SAS token expired at \d{4}-.*Z, 3 h before this server's clock \(.*\); if it was signed just now, the signer's clock is wrong: set it \(NTP\) and sign a new token/,
      );
    } finally {
      await p.dispose();
    }
  });

  test("a connection string of another service is told which host it is for", async () => {
    const p = await startProvisio();
    try {
      const cs = p.info.serviceConnectionString.replace("HostName=localhost", "HostName=dps.example.net");
      const r = await runProvisio([
        "enrollment",
        "list",
        "--login",
        cs,
        "--ca-file",
        p.info.caFile,
        "--address",
        "127.0.0.1",
        "--port",
        String(p.info.ports.https),
      ]);
      assert.equal(r.code, 1);
      // TLS stops it first: the server's certificate does not name that host.
      assert.match(r.stderr, /127\.0\.0\.1:\d+ is not 'dps\.example\.net': its certificate names other hosts/);
      assert.match(r.stderr, /provisio connection-string show/);
      // A token for another host that does reach the service (TLS to an address) is told the same.
      const token = createSasToken(
        p.info.serviceConnectionString.split("SharedAccessKey=")[1] ?? "",
        "dps.example.net",
        Math.floor(Date.now() / 1000) + 600,
        "provisioningserviceowner",
      );
      const refused = await call(p, "GET", "/enrollments/x?api-version=2021-10-01", { auth: token });
      assert.equal(refused.status, 401);
      assert.match(
        refused.text,
        /the SAS token is for 'dps\.example\.net', not for this service \('localhost'\): use a connection string whose HostName is this service's/,
      );
    } finally {
      await p.dispose();
    }
  });
});
