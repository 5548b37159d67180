// `provisio serve` settings (server/config.ts): one table read by the CLI, the loader and the README.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { loadServeConfig, SETTINGS, settingValue } from "../../src/server/config.js";
import { BIN } from "../support/provisio-process.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

test("with nothing given every setting has its default", () => {
  assert.deepEqual(loadServeConfig({}, {}), {
    dataDir: "./provisio-data",
    databaseUrl: undefined,
    host: "localhost",
    bind: "0.0.0.0",
    httpsPort: 8443,
    mqttPort: 8883,
    amqpPort: 5671,
    metricsPort: 9464,
    metricsBind: "127.0.0.1",
    hubs: 1,
    logLevel: "info",
    logFormat: "auto",
    showSecrets: false,
    masterKey: undefined,
    registerWaitMs: 1500,
    tlsCert: [],
    tlsKey: [],
    tlsCa: undefined,
    oidcIssuer: undefined,
    oidcAudience: ["https://azure-devices-provisioning.net", "https://iothubs.azure.net"],
    oidcJwksUrl: undefined,
    oidcRoleClaims: ["roles", "groups"],
    oidcConsoleClientId: undefined,
    oidcConsoleScope: "openid profile",
    oidcRoles: {
      "DeviceProvisioningService.DataContributor": "contributor",
      "DeviceProvisioningService.DataReader": "reader",
      "DeviceProvisioningService.ServiceConfig": "config",
    },
    minTlsVersion: "1.2",
    privateNetworks: ["127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"],
    hubAddresses: {},
    telemetryWebhooks: {},
    maxConnections: undefined,
    maxConnectionsPerAddress: 500,
    maxInFlight: 1000,
    operationLeaseMs: 20_000,
    profile: "fast",
    units: 1,
    registrationsPerMinute: 0,
    serviceOperationsPerMinute: 0,
    pollsPer10Seconds: 0,
    fault: [],
    pollAfterSeconds: 1,
    maxRegistrations: 0,
    maxEnrollments: 0,
    maxX509Groups: 0,
    maxSymmetricKeyGroups: 0,
    maxCaCertificates: 25,
    maxLinkedHubs: 50,
    maxIpFilterRules: 100,
    webhookTimeoutMs: 30_000,
    webhookRetries: 10,
    diagnosticLog: undefined,
    builtinHubClient: "in-process",
  });
});

test("--profile azure brings DPS's limits and polling; a setting of its own still wins", () => {
  const azure = loadServeConfig({ profile: "azure" }, { PROVISIO_MAX_ENROLLMENTS: "10" });
  assert.equal(azure.registerWaitMs, 0);
  assert.equal(azure.pollAfterSeconds, 3);
  assert.equal(azure.registrationsPerMinute, 1000);
  assert.equal(azure.serviceOperationsPerMinute, 1000);
  assert.equal(azure.pollsPer10Seconds, 5);
  assert.equal(azure.maxRegistrations, 1_000_000);
  assert.equal(azure.maxEnrollments, 10);
  assert.equal(azure.maxX509Groups, 100);
  assert.equal(azure.maxSymmetricKeyGroups, 100);
  assert.equal(loadServeConfig({}, { PROVISIO_PROFILE: "azure" }).maxRegistrations, 1_000_000);
  assert.throws(() => loadServeConfig({ profile: "cloudy" }), /--profile must be one of fast, azure, not 'cloudy'/);
  assert.throws(() => loadServeConfig({ units: "0" }), /--units must be at least 1/);
});

test("a flag beats the environment, which beats the default; an empty variable is unset", () => {
  const env = { PROVISIO_HTTPS_PORT: "9443", PROVISIO_MQTT_PORT: "", PROVISIO_REGISTER_WAIT_MS: "0" };
  const config = loadServeConfig({ httpsPort: "0" }, env);
  assert.equal(config.httpsPort, 0);
  assert.equal(config.mqttPort, 8883);
  assert.equal(config.registerWaitMs, 0);
  assert.equal(loadServeConfig({}, env).httpsPort, 9443);
  assert.equal(loadServeConfig({}, { PROVISIO_BUILTIN_HUB_CLIENT: "REST" }).builtinHubClient, "rest");
  assert.equal(settingValue("dataDir", undefined, { PROVISIO_DATA_DIR: "/srv/dps" }), "/srv/dps");
  assert.equal(settingValue("dataDir", "here", { PROVISIO_DATA_DIR: "/srv/dps" }), "here");
});

test("a value that does not parse is refused, naming the flag or the variable", () => {
  assert.throws(
    () => loadServeConfig({ httpsPort: "70000" }, {}),
    /--https-port must be a port number 0-65535, not '70000'/,
  );
  assert.throws(() => loadServeConfig({ hubs: "51" }, {}), /--hubs must be a whole number of hubs 0-50/);
  assert.throws(() => loadServeConfig({}, { PROVISIO_MQTT_PORT: "x" }), /PROVISIO_MQTT_PORT must be a port number/);
  assert.throws(() => loadServeConfig({}, { PROVISIO_LOG_LEVEL: "chatty" }), /PROVISIO_LOG_LEVEL must be one of fatal/);
  assert.throws(
    () => loadServeConfig({}, { PROVISIO_WEBHOOK_RETRIES: "-1" }),
    /PROVISIO_WEBHOOK_RETRIES must be a whole number/,
  );
  assert.throws(() => loadServeConfig({}, { PROVISIO_BUILTIN_HUB_CLIENT: "grpc" }), /in-process, rest/);
  assert.deepEqual(
    loadServeConfig({}, { PROVISIO_HUB_ADDRESSES: "Hub.Example.net=10.0.0.5:8443, b.example.net=gw.lan" }).hubAddresses,
    { "hub.example.net": { host: "10.0.0.5", port: 8443 }, "b.example.net": { host: "gw.lan", port: 443 } },
  );
  assert.throws(() => loadServeConfig({}, { PROVISIO_HUB_ADDRESSES: "nohost" }), /hostName=address\[:port\]/);
  assert.throws(
    () => loadServeConfig({ databaseUrl: "mysql://db/x" }, {}),
    /--database-url must be a postgres:\/\/ URL; 'mysql:' databases are not supported/,
  );
});

test("each flag names its setting: commander hands `--tls-cert` over as tlsCert", () => {
  for (const s of SETTINGS) {
    if (!s.flag) continue;
    const camel = (s.flag.split(" ")[0] as string).slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    assert.equal(camel, s.key, s.flag);
  }
});

test("every setting is documented in the README with its variable and flag", () => {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  for (const s of SETTINGS) {
    assert.ok(readme.includes(`\`${s.env}\``), `README lacks ${s.env}`);
    if (s.flag) assert.ok(readme.includes(s.flag.split(" ")[0] as string), `README lacks ${s.flag}`);
  }
});

test("provisio serve --help lists every setting", () => {
  const help = execFileSync(process.execPath, [BIN, "serve", "--help"], { encoding: "utf8" });
  for (const s of SETTINGS) {
    assert.ok(help.includes(s.env), `help lacks ${s.env}`);
    if (s.flag) assert.ok(help.includes(s.flag.split(" ")[0] as string), `help lacks ${s.flag}`);
  }
});
