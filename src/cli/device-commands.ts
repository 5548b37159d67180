// `provisio device register` (az iot device registration create) and `provisio device simulate`:
// devices registering against Provisio or any DPS endpoint, through the same load generators as
// `npm run bench` (src/load/). The simulator registers N devices of a symmetric-key or X.509
// group over any of the five device transports, optionally sends each one's first message to its
// hub, shows progress on a terminal and ends with a summary.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createSecureContext, type SecureContext } from "node:tls";
import { type Command, Option } from "commander";
import { createSasToken } from "../attestation/sas-token.js";
import { deriveDeviceKey } from "../attestation/symmetric-key.js";
import { isObject } from "../domain/json.js";
import { prepareAmqpDevice, registerAmqp } from "../load/amqp-device.js";
import type { Endpoint } from "../load/dial.js";
import { prepareHttpsDevice, registerHttps } from "../load/https-device.js";
import { sendHubMessage } from "../load/hub-message.js";
import { type DeviceIdentity, type Outcome, runLoad } from "../load/load-run.js";
import { prepareMqttDevice, registerMqtt } from "../load/mqtt-device.js";
import { settingValue } from "../server/config.js";
import type { ServeInfo } from "../server.js";
import { DpsSession, jsonFlag, type Opts, print, serverOptions, str } from "./server-options.js";
import { formatSummary, progressLine, summarize } from "./simulation-summary.js";

const PROTOCOLS = ["http", "mqtt", "mqttws", "amqp", "amqpws"] as const;
type Protocol = (typeof PROTOCOLS)[number];
const API = "api-version=2021-10-01";
const seg = encodeURIComponent;
const SIMULATOR_GROUP = "provisio-simulator";
const SIMULATOR_CA = "provisio-simulator-ca";

/** Where devices register: the data dir's Provisio, or `--provisioning-host` and `--id-scope`. */
interface Provisioning {
  idScope: string;
  /** Address to dial and the name to ask for. */
  address: string;
  hostName: string;
  ports: Record<Protocol, number>;
  ca: string | undefined;
  /** A local Provisio: its hubs answer on its own MQTT port. */
  local?: { mqttPort: number };
}

function readInfo(o: Opts): ServeInfo {
  const file = join(settingValue("dataDir", str(o, "dataDir")), "provisio.json");
  try {
    return JSON.parse(readFileSync(file, "utf8")) as ServeInfo;
  } catch {
    throw new Error(
      `Cannot read ${file}: is 'provisio serve' running with that --data-dir? Or give --provisioning-host and --id-scope.`,
    );
  }
}

function portOf(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`${flag} must be a port number (1-65535).`);
  return n;
}

function provisioningOf(o: Opts): Provisioning {
  const caFile = str(o, "caFile");
  const ca = caFile ? readFileSync(caFile, "utf8") : undefined;
  const remote = str(o, "provisioningHost");
  if (remote) {
    const idScope = str(o, "idScope");
    if (!idScope) throw new Error("--provisioning-host needs --id-scope too.");
    const [host = remote, portText] = remote.split(":");
    const port = portOf(portText, "--provisioning-host's port");
    return {
      idScope,
      address: str(o, "address") ?? host,
      hostName: host,
      ports: {
        http: port ?? 443,
        mqttws: port ?? 443,
        amqpws: port ?? 443,
        mqtt: port ?? 8883,
        amqp: port ?? 5671,
      },
      ca,
    };
  }
  const info = readInfo(o);
  return {
    idScope: str(o, "idScope") ?? info.idScope,
    address: str(o, "address") ?? info.host,
    hostName: info.host,
    ports: {
      http: info.ports.https,
      mqttws: info.ports.https,
      amqpws: info.ports.https,
      mqtt: info.ports.mqtt,
      amqp: info.ports.amqp,
    },
    ca: ca ?? readFileSync(info.caFile, "utf8"),
    local: { mqttPort: info.ports.mqtt },
  };
}

function protocolOf(o: Opts): Protocol {
  const p = (str(o, "protocol") ?? "http").toLowerCase();
  if (!(PROTOCOLS as readonly string[]).includes(p)) throw new Error(`--protocol must be ${PROTOCOLS.join(", ")}.`);
  return p as Protocol;
}

function endpointOf(p: Provisioning, protocol: Protocol, secureContext: SecureContext): Endpoint {
  return {
    host: p.address,
    port: p.ports[protocol],
    servername: p.hostName,
    secureContext,
    webSocket: protocol === "mqttws" || protocol === "amqpws",
  };
}

/** The register function of a protocol, with each device's request built once. */
function registrar(protocol: Protocol, hostName: string): (e: Endpoint, id: DeviceIdentity) => Promise<Outcome> {
  if (protocol === "http") return (e, id) => registerHttps(e, prepareHttpsDevice(id, hostName));
  if (protocol === "mqtt" || protocol === "mqttws") return (e, id) => registerMqtt(e, prepareMqttDevice(id));
  return (e, id) => registerAmqp(e, prepareAmqpDevice(id, hostName));
}

const tokenFor = (p: Provisioning, registrationId: string, key: string): string =>
  createSasToken(
    key,
    `${p.idScope}/registrations/${registrationId}`,
    Math.floor(Date.now() / 1000) + 3600,
    "registration",
  );

async function serviceKey(o: Opts, collection: "enrollments" | "enrollmentGroups", id: string): Promise<string> {
  const client = await new DpsSession(o).dataPlane("EnrollmentRead");
  const a = await client.call("POST", `/${collection}/${seg(id)}/attestationmechanism?${API}`);
  const keys = isObject(a) && isObject(a.symmetricKey) ? a.symmetricKey : undefined;
  if (typeof keys?.primaryKey !== "string") {
    throw new Error(`'${id}' does not use symmetric keys; use --attestation x509 with its certificates.`);
  }
  return keys.primaryKey;
}

/** The group key to derive device keys from: --group-key, --group-id's, or the simulator's own group. */
async function groupKeyOf(o: Opts): Promise<{ key: string; group: string }> {
  const given = str(o, "groupKey");
  if (given) return { key: given, group: str(o, "groupId") ?? "(given key)" };
  const gid = str(o, "groupId");
  if (gid) return { key: await serviceKey(o, "enrollmentGroups", gid), group: gid };
  // No group named: the simulator's own symmetric-key group, created the first time.
  const client = await new DpsSession(o).dataPlane("EnrollmentWrite");
  const path = `/enrollmentGroups/${SIMULATOR_GROUP}?${API}`;
  if ((await client.send("GET", path)).status === 404) {
    await client.call("PUT", path, {
      body: { enrollmentGroupId: SIMULATOR_GROUP, attestation: { type: "symmetricKey" } },
    });
  }
  return { key: await serviceKey(o, "enrollmentGroups", SIMULATOR_GROUP), group: SIMULATOR_GROUP };
}

interface X509Issuer {
  certPem: string;
  keyPem: string;
  group: string;
}

/**
 * The CA that signs the simulated devices' certificates: --signing-cert and --signing-key (the
 * CA an enrollment group trusts), or a fresh one for this run, uploaded as the instance's verified
 * CA certificate `provisio-simulator-ca` (replacing the last run's) and referenced by the
 * simulator's X.509 group: a chain must reach a verified CA (behaviors.md §2.2).
 */
async function x509IssuerOf(o: Opts): Promise<X509Issuer> {
  const certFile = str(o, "signingCert");
  const keyFile = str(o, "signingKey");
  if (certFile || keyFile) {
    if (!certFile || !keyFile) throw new Error("--signing-cert and --signing-key go together.");
    return {
      certPem: readFileSync(certFile, "utf8"),
      keyPem: readFileSync(keyFile, "utf8"),
      group: str(o, "groupId") ?? "(given CA)",
    };
  }
  if (str(o, "groupId")) {
    throw new Error("With --group-id and --attestation x509, give the group's CA as --signing-cert and --signing-key.");
  }
  const factory = await import("../security/cert-factory.js");
  const ca = await factory.createRootCa(`Provisio Simulator CA ${randomBytes(3).toString("hex")}`);
  const session = new DpsSession(o);
  const certificate = `${await session.instancePath()}/certificates/${SIMULATOR_CA}?api-version=2022-02-05`;
  const existing = await session.client.send("GET", certificate);
  const etag = existing.status === 200 ? (existing.body as { etag?: string } | undefined)?.etag : undefined;
  await session.client.call("PUT", certificate, {
    body: { certificate: ca.certPem, isVerified: true },
    ...(etag ? { headers: { "if-match": etag } } : {}),
  });
  const group = `${SIMULATOR_GROUP}-x509`;
  const client = await session.dataPlane("EnrollmentWrite");
  const path = `/enrollmentGroups/${group}?${API}`;
  const stored = await client.send("GET", path);
  const groupEtag = stored.status === 200 ? (stored.body as { etag?: string } | undefined)?.etag : undefined;
  await client.call("PUT", path, {
    body: {
      enrollmentGroupId: group,
      attestation: { type: "x509", x509: { caReferences: { primary: SIMULATOR_CA } } },
    },
    ...(groupEtag ? { headers: { "if-match": groupEtag } } : {}),
  });
  return { certPem: ca.certPem, keyPem: ca.keyPem, group };
}

/** Each simulated device: its identity, its TLS context (trust, and its own certificate with X.509), its key. */
interface SimulatedDevice {
  id: DeviceIdentity;
  context: SecureContext;
  key?: string;
}

async function simulatedDevices(o: Opts, p: Provisioning, count: number, prefix: string) {
  const ids = Array.from({ length: count }, (_, i) => `${prefix}-${i}`);
  const payload = str(o, "payload") ? jsonFlag(str(o, "payload") as string, "--payload") : undefined;
  const common = { idScope: p.idScope, ...(payload !== undefined ? { payload } : {}) };
  if ((str(o, "attestation") ?? "symmetrickey").toLowerCase() === "x509") {
    const issuer = await x509IssuerOf(o);
    const factory = await import("../security/cert-factory.js");
    const signer = await factory.loadIssuer(issuer.certPem, issuer.keyPem);
    const devices: SimulatedDevice[] = [];
    let next = 0;
    // Issuing costs a few ms of CPU each: before the clock starts, eight at a time.
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < ids.length) {
          const registrationId = ids[next++] as string;
          const leaf = await factory.createDeviceCertificate(signer, registrationId);
          devices.push({
            id: { ...common, registrationId },
            context: createSecureContext({
              ...(p.ca ? { ca: p.ca } : {}),
              cert: leaf.certPem + issuer.certPem,
              key: leaf.keyPem,
            }),
          });
        }
      }),
    );
    return { devices, group: issuer.group, attestation: "X.509 certificates" };
  }
  const { key: groupKey, group } = await groupKeyOf(o);
  const context = createSecureContext(p.ca ? { ca: p.ca } : {});
  const devices = ids.map((registrationId): SimulatedDevice => {
    const key = deriveDeviceKey(groupKey, registrationId);
    return { id: { ...common, registrationId, token: tokenFor(p, registrationId, key) }, context, key };
  });
  return { devices, group, attestation: "symmetric keys" };
}

function positive(o: Opts, key: string, flag: string, fallback: number): number {
  const text = str(o, key);
  if (text === undefined) return fallback;
  const n = Number(text.replace(/\/s$/, ""));
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag} must be a positive number.`);
  return n;
}

async function simulate(o: Opts): Promise<void> {
  const protocol = protocolOf(o);
  const count = Math.floor(positive(o, "count", "--count", 10));
  const concurrency = Math.floor(positive(o, "concurrency", "--concurrency", 16));
  const rate = str(o, "rate") === undefined ? undefined : positive(o, "rate", "--rate", 1);
  const p = provisioningOf(o);
  const prefix = str(o, "idPrefix") ?? `sim-${randomBytes(3).toString("hex")}`;
  const tty = process.stderr.isTTY === true && str(o, "output") !== "json";
  if (tty) process.stderr.write(`preparing ${count} devices…\r`);
  const { devices, group, attestation } = await simulatedDevices(o, p, count, prefix);
  const register = registrar(protocol, p.hostName);
  const sendMessage = o.sendMessage === true;
  const messages = { sent: 0, failures: {} as Record<string, number> };
  const hubEndpoint = (hub: string, context: SecureContext): Endpoint => ({
    // A local Provisio serves its built-in hubs on its own MQTT listener.
    host: str(o, "hubAddress") ?? (p.local ? p.address : hub),
    port: portOf(str(o, "hubPort"), "--hub-port") ?? p.local?.mqttPort ?? 8883,
    servername: hub,
    secureContext: context,
  });

  let done = 0;
  let failed = 0;
  const started = Date.now();
  const draw = () => {
    const perSecond = done / Math.max(0.001, (Date.now() - started) / 1000);
    process.stderr.write(`\r${progressLine(done, count, failed, perSecond)}`);
  };
  const timer = tty ? setInterval(draw, 200) : undefined;
  const result = await runLoad(
    devices,
    async (d) => {
      const outcome = await register(endpointOf(p, protocol, d.context), d.id);
      if (outcome.ok && sendMessage && outcome.assignedHub && outcome.deviceId) {
        const body = Buffer.from(JSON.stringify({ simulated: true, registrationId: d.id.registrationId }));
        try {
          await sendHubMessage(
            hubEndpoint(outcome.assignedHub, d.context),
            { hub: outcome.assignedHub, deviceId: outcome.deviceId, ...(d.key ? { key: d.key } : {}) },
            body,
          );
          messages.sent++;
        } catch (err) {
          const why = (err as Error).message;
          messages.failures[why] = (messages.failures[why] ?? 0) + 1;
        }
      }
      return outcome;
    },
    concurrency,
    Number.POSITIVE_INFINITY,
    {
      onOutcome: (r) => {
        done++;
        if (!r.ok) failed++;
      },
      ...(rate !== undefined ? { ratePerSecond: rate } : {}),
    },
  );
  if (timer) {
    clearInterval(timer);
    draw();
    process.stderr.write("\n");
  }
  const summary = summarize(result, {
    protocol,
    attestation: `${attestation} (group ${group})`,
    count,
    concurrency,
    ...(sendMessage ? { messages } : {}),
  });
  if (str(o, "output") === "json") print(summary, o);
  else process.stdout.write(formatSummary(summary));
  const messagesFailed = summary.messages ? summary.messages.failed > 0 : false;
  if (summary.failed > 0 || messagesFailed) process.exitCode = 1;
}

/** One device's key: --key, or derived from --group-key / --group-id's key, or its individual enrollment's. */
async function deviceKeyOf(o: Opts, rid: string): Promise<string> {
  const key = str(o, "key");
  if (key) return key;
  const groupKey = str(o, "groupKey");
  if (groupKey) return deriveDeviceKey(groupKey, rid);
  const gid = str(o, "groupId");
  if (gid) return deriveDeviceKey(await serviceKey(o, "enrollmentGroups", gid), rid);
  return serviceKey(o, "enrollments", rid);
}

async function registerDevice(o: Opts): Promise<void> {
  const rid = str(o, "registrationId");
  if (!rid) throw new Error("--registration-id (--rid) is required.");
  const protocol = protocolOf(o);
  const p = provisioningOf(o);
  const payload = str(o, "payload") ? jsonFlag(str(o, "payload") as string, "--payload") : undefined;
  const base = { idScope: p.idScope, registrationId: rid, ...(payload !== undefined ? { payload } : {}) };
  const certFile = str(o, "certificateFile");
  let id: DeviceIdentity;
  let context: SecureContext;
  if (certFile) {
    const keyFile = str(o, "keyFile");
    if (!keyFile) throw new Error("--certificate-file needs --key-file (the device's private key).");
    context = createSecureContext({
      ...(p.ca ? { ca: p.ca } : {}),
      cert: readFileSync(certFile, "utf8"),
      key: readFileSync(keyFile, "utf8"),
    });
    id = base;
  } else {
    context = createSecureContext(p.ca ? { ca: p.ca } : {});
    id = { ...base, token: tokenFor(p, rid, await deviceKeyOf(o, rid)) };
  }
  const outcome = await registrar(protocol, p.hostName)(endpointOf(p, protocol, context), id);
  if (!outcome.ok) throw new Error(`Registration of '${rid}' failed: ${outcome.why}`);
  print(
    outcome.registrationState ?? { registrationId: rid, assignedHub: outcome.assignedHub, deviceId: outcome.deviceId },
    o,
  );
}

/** The flags both verbs share: where to register, how to trust it, which protocol. */
function deviceFlags(cmd: Command): Command {
  return serverOptions(cmd, "EnrollmentRead (to read keys) or EnrollmentWrite (to create the simulator's group)", {
    shortLogin: false,
  })
    .option("--dps-name <name>", "the instance whose keys to read (with the data dir or --login)")
    .addOption(new Option("--protocol <protocol>", "the device transport").choices([...PROTOCOLS]).default("http"))
    .option("--provisioning-host <host[:port]>", "any DPS device endpoint (default: the data dir's Provisio)")
    .option("--id-scope <scope>", "the ID scope (default: the data dir's)")
    .option("--gid, --group-id <id>", "the enrollment group the devices belong to")
    .option("--group-key <key>", "the symmetric-key group's key (instead of reading it from the service)")
    .option("--payload <json>", "data for a custom allocation webhook");
}

export function registerDeviceCommands(program: Command): void {
  const device = program.command("device").description("Devices that register: one, or a simulated fleet");

  deviceFlags(device.command("register").description("Register one device and print its assignment"))
    .option("--rid, --registration-id <id>", "the device's registration id")
    .option("--key <key>", "the device's symmetric key (default: its enrollment's, or derived from --group-id's)")
    .option("--certificate-file <file>", "X.509: the device certificate chain (PEM, leaf first)")
    .option("--key-file <file>", "X.509: the device's private key (PEM)")
    .action(registerDevice);

  deviceFlags(device.command("simulate").description("Register a fleet of simulated devices and summarise how it went"))
    .option("--count <n>", "how many devices", "10")
    .addOption(
      new Option("--attestation <type>", "symmetric keys derived from a group key, or X.509 leaves issued by a CA")
        .choices(["symmetrickey", "x509"])
        .default("symmetrickey"),
    )
    .option("--signing-cert <file>", "X.509: the CA certificate (PEM) the group trusts, which signs the leaves")
    .option("--signing-key <file>", "X.509: that CA's private key (PEM)")
    .option("--rate <n/s>", "start at most this many registrations a second")
    .option("--concurrency <n>", "registrations in flight at once", "16")
    .option("--id-prefix <prefix>", "registration ids are {prefix}-{n} (default sim-{random})")
    .option("--send-message", "then connect each device to its hub over MQTT and send one message")
    .option("--hub-address <host>", "where to dial the hubs (default: the hub's host name; a local Provisio's address)")
    .option("--hub-port <n>", "the hubs' MQTT port (default 8883; a local Provisio's MQTT port)")
    .action(simulate);
}
