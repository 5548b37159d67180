// The start-up banner and the log format choice, from fixed inputs.
import assert from "node:assert/strict";
import { test } from "node:test";
import { duration, expiredReason } from "../../src/attestation/sas-token.js";
import { formatBanner } from "../../src/cli/banner.js";
import { resolveLogFormat } from "../../src/observability/logger.js";
import type { ServeInfo } from "../../src/service.js";

const info: ServeInfo = {
  idScope: "0ne00ABCDEF",
  host: "localhost",
  caFile: "/srv/provisio/tls/ca.pem",
  ports: { https: 8443, mqtt: 8883, amqp: 5671, metrics: 9464 },
  serviceConnectionString: "HostName=localhost;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=c2VjcmV0",
  hubs: [
    {
      name: "hub-1",
      hostName: "hub-1.localhost",
      connectionString: "HostName=hub-1.localhost;SharedAccessKeyName=iothubowner;SharedAccessKey=aHVi",
      eventHubConnectionString:
        "Endpoint=sb://hub-1.localhost/;SharedAccessKeyName=iothubowner;SharedAccessKey=aHVi;EntityPath=hub-1",
    },
  ],
};

test("the banner: every endpoint, the files, the next command; secrets only when asked", () => {
  const view = { version: "1.2.3", dataDirArg: undefined, dataDir: "/srv/provisio", info, showSecrets: false };
  assert.equal(
    formatBanner(view),
    [
      "Provisio 1.2.3 is serving",
      "",
      "  ID scope            0ne00ABCDEF",
      "  Device endpoints    HTTPS     https://localhost:8443",
      "                      MQTT      mqtts://localhost:8883",
      "                      MQTT-WS   wss://localhost:8443/$iothub/websocket",
      "                      AMQP      amqps://localhost:5671",
      "                      AMQP-WS   wss://localhost:8443/$iothub/websocket",
      "  Service endpoint    https://localhost:8443  (connection string: in provisio.json, or --show-secrets)",
      "  Web console         https://localhost:8443/",
      "  Built-in hubs       hub-1  hub-1.localhost (HTTPS 8443, MQTT 8883, AMQP 5671)",
      "                        events: Event Hubs-compatible, entity hub-1 (in provisio.json, or --show-secrets)",
      "  Metrics             http://127.0.0.1:9464/metrics",
      "  Settings            /srv/provisio/provisio.json",
      "  CA devices trust    /srv/provisio/tls/ca.pem",
      "",
      "  Try next: register ten simulated devices and see where they went:",
      "    npx provisio device simulate --count 10",
      "",
    ].join("\n"),
  );
  const secret = formatBanner({ ...view, showSecrets: true, dataDirArg: "my data" });
  assert.ok(secret.includes(info.serviceConnectionString));
  assert.ok(secret.includes(info.hubs[0]?.connectionString ?? "?"));
  assert.ok(secret.includes(info.hubs[0]?.eventHubConnectionString ?? "?"));
  assert.ok(secret.includes("--data-dir 'my data'"));
  const counted = formatBanner({
    ...view,
    counts: { enrollments: 3, groups: 1, registrations: 7, connected: undefined },
  });
  assert.match(
    counted,
    /Enrollments {9}3 individual, 1 groups\n {2}Registrations {7}7\n {2}Connected devices {3}unknown/,
  );
});

test("logs: pretty on a terminal, JSON lines elsewhere, unless chosen", () => {
  assert.equal(resolveLogFormat("auto", true), "pretty");
  assert.equal(resolveLogFormat("auto", false), "json");
  assert.equal(resolveLogFormat("json", true), "json");
  assert.equal(resolveLogFormat("pretty", false), "pretty");
});

test("an expired token says by how much, by this server's clock", () => {
  assert.equal(duration(45), "45 s");
  assert.equal(duration(12 * 60), "12 min");
  assert.equal(duration(3 * 3600 + 5 * 60), "3 h 5 min");
  assert.equal(duration(3 * 86400), "3 days");
  assert.equal(
    expiredReason({ se: 1_800_000_000 }, 1_800_000_000 + 7200),
    "the SAS token expired at 2027-01-15T08:00:00.000Z, 2 h before this server's clock (2027-01-15T10:00:00.000Z); if it was signed just now, the signer's clock is wrong: set it (NTP) and sign a new token",
  );
});
