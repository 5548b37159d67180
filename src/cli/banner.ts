// What `provisio serve` shows a person at a terminal once every listener accepts, and what
// `provisio status` shows of a running one: the ID scope, each endpoint, where the settings and
// the CA are, and one command to try next. Pure: a string from what the server wrote.
import type { ServeInfo } from "../service.js";

export interface BannerView {
  version: string;
  /** The data directory as the person gave it (for the next command), and where it is. */
  dataDirArg: string | undefined;
  dataDir: string;
  info: ServeInfo;
  /** Where the metrics listener is bound, when there is one. */
  metricsBind?: string;
  showSecrets: boolean;
  /** `provisio status`: live counts. */
  counts?: { enrollments: number; groups: number; registrations: number; connected: number | undefined };
}

const row = (label: string, value: string): string => `  ${label.padEnd(20)}${value}`;
const more = (value: string): string => `  ${"".padEnd(20)}${value}`;

export function formatBanner(v: BannerView, headline = `Provisio ${v.version} is serving`): string {
  const { info } = v;
  const { host, ports } = info;
  const https = `${host}:${ports.https}`;
  const secret = (cs: string) => (v.showSecrets ? cs : "in provisio.json, or --show-secrets");
  const lines = [
    headline,
    "",
    row("ID scope", info.idScope),
    row("Device endpoints", `HTTPS     https://${https}`),
    more(`MQTT      mqtts://${host}:${ports.mqtt}`),
    more(`MQTT-WS   wss://${https}/$iothub/websocket`),
    more(`AMQP      amqps://${host}:${ports.amqp}`),
    more(`AMQP-WS   wss://${https}/$iothub/websocket`),
    row("Service endpoint", `https://${https}  (connection string: ${secret(info.serviceConnectionString)})`),
    row("Web console", `https://${https}/`),
  ];
  info.hubs.forEach((h, i) => {
    lines.push(
      (i === 0 ? row : (_: string, value: string) => more(value))(
        "Built-in hubs",
        `${h.name}  ${h.hostName} (HTTPS ${ports.https}, MQTT ${ports.mqtt}, AMQP ${ports.amqp})`,
      ),
    );
    if (v.showSecrets) lines.push(more(`  ${h.connectionString}`));
    // Telemetry as IoT Hub users read it: the Event Hubs-compatible endpoint.
    lines.push(more(`  events: Event Hubs-compatible, entity ${h.name} (${secret(h.eventHubConnectionString)})`));
  });
  if (ports.metrics !== undefined) {
    lines.push(row("Metrics", `http://${v.metricsBind ?? "127.0.0.1"}:${ports.metrics}/metrics`));
  }
  lines.push(row("Settings", `${v.dataDir}/provisio.json`), row("CA devices trust", info.caFile));
  if (v.counts) {
    const c = v.counts;
    lines.push(
      row("Enrollments", `${c.enrollments} individual, ${c.groups} groups`),
      row("Registrations", String(c.registrations)),
      row("Connected devices", c.connected === undefined ? "unknown" : `${c.connected} on the built-in hubs`),
    );
  }
  const dataDir = v.dataDirArg ? ` --data-dir ${quote(v.dataDirArg)}` : "";
  lines.push(
    "",
    "  Try next: register ten simulated devices and see where they went:",
    `    npx provisio device simulate --count 10${dataDir}`,
    "",
  );
  return lines.join("\n");
}

const quote = (s: string): string => (/^[\w./-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`);
