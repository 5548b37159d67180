// `provisio tls probe`: what a given client would negotiate with a running Provisio (or any TLS
// server): protocol, cipher suite, certificate and chain, trust and host name (issue 20 "TLS").
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { SecureVersion } from "node:tls";
import type { Command } from "commander";
import { cipherList } from "../security/cipher-names.js";
import { type ProbeReport, probeTls } from "../security/tls-probe.js";
import { parsePort, settingValue } from "../server/config.js";
import type { ServeInfo } from "../server.js";

const VERSIONS: Record<string, SecureVersion> = {
  "1.0": "TLSv1",
  "1.1": "TLSv1.1",
  "1.2": "TLSv1.2",
  "1.3": "TLSv1.3",
};
const PROTOCOLS = ["https", "mqtt", "amqp"] as const;

interface ProbeFlags {
  dataDir?: string;
  protocol: string;
  address?: string;
  port?: string;
  host?: string;
  caFile?: string;
  tlsVersion?: string;
  cipher?: string[];
  sigalgs?: string;
  output: string;
}

function readInfo(dataDir: string): ServeInfo | undefined {
  try {
    return JSON.parse(readFileSync(join(dataDir, "provisio.json"), "utf8")) as ServeInfo;
  } catch {
    return undefined;
  }
}

export function formatReport(r: ProbeReport): string {
  const at = `${r.target.servername} at ${r.target.address}:${r.target.port}`;
  if (r.error)
    return [
      `${at}: the TLS handshake failed`,
      `  error        ${r.error}`,
      ...(r.hint ? [`  try          ${r.hint}`] : []),
    ].join("\n");
  const c = r.certificate;
  const lines = [
    `${at}: ${r.ok ? "a client like this one connects" : "the handshake succeeds, but a client like this one would refuse the server"}`,
    `  protocol     ${r.protocol}`,
    `  cipher suite ${r.cipher?.name} (OpenSSL: ${r.cipher?.openssl})`,
  ];
  if (c) {
    lines.push(
      `  certificate  ${c.subject} (${c.key})`,
      `               names ${c.subjectAltName || "none"}`,
      `               issued by ${c.issuer}`,
      `               valid ${c.validFrom} to ${c.validTo}, serial ${c.serialNumber}`,
    );
  }
  lines.push(`  path         ${r.chain?.length ? r.chain.map((x) => x.subject).join(" <- ") : "none built"}`);
  lines.push(`  trusted      ${r.trusted ? "yes" : `no: ${r.trustError}`}`);
  lines.push(`  host name    ${r.hostnameMatches ? "matches" : `does not match: ${r.hostnameError}`}`);
  if (r.hint) lines.push(`  try          ${r.hint}`);
  return lines.join("\n");
}

async function probe(flags: ProbeFlags): Promise<void> {
  const protocol = PROTOCOLS.find((p) => p === flags.protocol.toLowerCase());
  if (!protocol) throw new Error(`--protocol must be one of ${PROTOCOLS.join(", ")}, not '${flags.protocol}'.`);
  const dataDir = settingValue("dataDir", flags.dataDir);
  const info = readInfo(dataDir);
  if (!info && (flags.port === undefined || flags.address === undefined)) {
    throw new Error(
      `Cannot read ${join(dataDir, "provisio.json")}: is 'provisio serve --data-dir ${dataDir}' running? Or pass --address and --port.`,
    );
  }
  const version = flags.tlsVersion === undefined ? undefined : VERSIONS[flags.tlsVersion];
  if (flags.tlsVersion !== undefined && !version) {
    throw new Error(`--tls-version must be one of ${Object.keys(VERSIONS).join(", ")}, not '${flags.tlsVersion}'.`);
  }
  let ciphers = flags.cipher?.length ? cipherList(flags.cipher) : undefined;
  // OpenSSL's default security level would keep this client from offering TLS 1.0 or 1.1 at all.
  if (version === "TLSv1" || version === "TLSv1.1") ciphers = `${ciphers ?? "DEFAULT"}:@SECLEVEL=0`;
  const caFile = flags.caFile ?? info?.caFile;
  const host = flags.host ?? info?.host ?? flags.address ?? "localhost";
  const report = await probeTls({
    address: flags.address ?? "127.0.0.1",
    port: flags.port !== undefined ? parsePort(flags.port, "--port") : (info?.ports[protocol] as number),
    servername: host,
    ...(caFile ? { ca: readFileSync(caFile) } : {}),
    ...(version ? { minVersion: version, maxVersion: version } : {}),
    ...(ciphers ? { ciphers } : {}),
    ...(flags.sigalgs ? { sigalgs: flags.sigalgs } : {}),
  });
  process.stdout.write(`${flags.output === "json" ? JSON.stringify(report, null, 2) : formatReport(report)}\n`);
  if (!report.ok) process.exitCode = 1;
}

export function registerTlsCommands(program: Command): void {
  const tls = program.command("tls").description("Troubleshoot TLS between devices and Provisio");
  tls
    .command("probe")
    .description(
      "Show what a client would negotiate with a listener: TLS version, cipher suite, the certificate and chain served, trust and host name; exits 1 when such a client would not connect",
    )
    .option("--data-dir <dir>", "data directory of the running server: its ports, host and CA (env PROVISIO_DATA_DIR)")
    .option("--protocol <name>", "the listener to probe: https, mqtt or amqp", "https")
    .option("--address <host>", "address to dial (default 127.0.0.1)")
    .option("--port <n>", "port to dial (default: the protocol's port in provisio.json)")
    .option("--host <name>", "host name the client asks for and checks (default: provisio.json's host)")
    .option("--ca-file <file>", "CA the client trusts (default: provisio.json's caFile)")
    .option("--tls-version <v>", "the one TLS version the client offers: 1.0, 1.1, 1.2 or 1.3 (default: 1.2 and 1.3)")
    .option(
      "--cipher <suite>",
      "a cipher suite the client offers, IANA (TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256) or OpenSSL name; repeat for more",
      (value: string, earlier: string[] = []) => [...earlier, value],
    )
    .option(
      "--sigalgs <list>",
      "signature algorithms the client offers, OpenSSL syntax (rsa_pss_rsae_sha256:rsa_pkcs1_sha256)",
    )
    .option("--output <format>", "text or json", "text")
    .action((flags: ProbeFlags) => probe(flags));
}
