// The whole service built from its config, without listening (design.md, "Running it"): the store
// (bootstrapped on first start), caches, built-in hubs, TLS material, the registration engine and
// the handlers every listener serves. `provisio serve` (server.ts) puts listeners in front of it;
// tests drive it in-process (test/support/in-process.ts).
import { randomUUID } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { join, resolve } from "node:path";
import { BuiltinHubs, eventHubConnectionString, ownerConnectionString } from "./builtin-hub/builtin-hubs.js";
import { HubRestApi } from "./builtin-hub/hub-rest-api.js";
import { InProcessHubClient } from "./builtin-hub/in-process-hub-client.js";
import { TelemetryLog } from "./builtin-hub/telemetry-log.js";
import { TelemetryWebhooks } from "./builtin-hub/telemetry-webhooks.js";
import { ConsoleSite } from "./console/console-site.js";
import { formatConnectionString } from "./domain/connection-string.js";
import { newEtag } from "./domain/etag.js";
import type { LinkedHub } from "./domain/instance.js";
import { newInstance, OWNER_POLICY, ownerPolicy } from "./management/instances.js";
import { ManagementApi } from "./management/management-api.js";
import { AuditTrail } from "./observability/audit-trail.js";
import { diagnosticLog } from "./observability/diagnostic-log.js";
import type { Logger } from "./observability/logger.js";
import { ProvisioMetrics } from "./observability/metrics.js";
import { FaultInjection } from "./provisioning/fault-injection.js";
import { HubClientPool } from "./provisioning/hub-client-pool.js";
import { HubIntentSettling } from "./provisioning/hub-intent-settling.js";
import { LocalInFlight } from "./provisioning/in-flight.js";
import { InstanceCache } from "./provisioning/instance-cache.js";
import { NetworkFilters } from "./provisioning/network-filters.js";
import { RecordCounts } from "./provisioning/record-counts.js";
import { type EngineOptions, OPERATION_TTL_MS, RegistrationEngine } from "./provisioning/registration-engine.js";
import { ScopeViews } from "./provisioning/scope-views.js";
import { OidcVerifier } from "./security/oidc.js";
import {
  certificateSubjectNames,
  type LoadedOperatorTls,
  loadOperatorTls,
  uncoveredNames,
} from "./security/operator-tls.js";
import { RateLimiter } from "./security/rate-limit.js";
import { ServiceAuthenticator } from "./security/service-auth.js";
import {
  ensureCaFiles,
  ensureTlsMaterial,
  installCa,
  installServerCertificates,
  type TlsMaterial,
} from "./security/tls-material.js";
import { type ServeConfig, webhookRetryDelays } from "./server/config.js";
import { type HttpsHandler, httpsHandler } from "./server/https-listener.js";
import { mqttRouter } from "./server/mqtt-router.js";
import { ServiceApi } from "./service-api/service-api.js";
import { openStore } from "./store/open-store.js";
import type { ProvisioningStore } from "./store/store.js";
import { DeviceApi } from "./transports/http/device-api.js";
import type { MqttHandler } from "./transports/mqtt/mqtt-connection.js";

/** The contents of `DIR/provisio.json`. */
export interface ServeInfo {
  idScope: string;
  host: string;
  caFile: string;
  ports: { https: number; mqtt: number; amqp: number; metrics?: number };
  serviceConnectionString: string;
  hubs: { name: string; hostName: string; connectionString: string; eventHubConnectionString: string }[];
}

export interface ProvisioService {
  readonly dataDir: string;
  readonly store: ProvisioningStore;
  readonly instances: InstanceCache;
  readonly hubs: BuiltinHubs;
  readonly engine: RegistrationEngine;
  readonly telemetry: TelemetryLog;
  /** The Prometheus registry, unless metrics are off. */
  readonly metrics: ProvisioMetrics | undefined;
  /** Every HTTPS request: device, service, management and built-in hub APIs. */
  readonly https: HttpsHandler;
  /** The MQTT sessions of one listener (DPS and built-in hub devices). */
  mqtt(transport: "mqtt" | "mqtt-ws"): MqttHandler;
  /** The current TLS material; `onTlsChange` hears of a reissued server certificate. */
  tls(): TlsMaterial;
  onTlsChange(listener: (tls: TlsMaterial) => void): void;
  /**
   * Reads the server certificates again (SIGHUP): an operator's files, or the development ones.
   * Rejects, serving what it served before, when they do not check out.
   */
  reloadTls(): Promise<void>;
  /** Where the built-in hubs' REST API answers, for PROVISIO_BUILTIN_HUB_CLIENT=rest. */
  setHttpsPort(port: number): void;
  /** What `DIR/provisio.json` says, with the ports the listeners got. */
  info(ports: ServeInfo["ports"]): Promise<ServeInfo>;
  /** Ends hub device sessions and lets carried registrations finish, for up to `ms`. */
  drain(ms: number): Promise<void>;
  /** Closes hub clients and the store: after `drain`, once nothing is served any more. */
  close(): Promise<void>;
}

const PRIMARY_NAME = "provisio";
const REFUSED_ATTEMPTS_TTL_MS = 7 * 24 * 3600_000;
/** About 1 KB each: a flood of refused devices costs at most ~100 MB. */
const REFUSED_ATTEMPTS_KEPT = 100_000;

/** Creates the primary instance on first start; resolves to true when it did. */
async function ensurePrimaryInstance(
  store: ProvisioningStore,
  instances: InstanceCache,
  host: string,
): Promise<boolean> {
  await instances.reload();
  const primary = instances.primary();
  if (!primary) {
    const created = await store.createInstance(newInstance(PRIMARY_NAME, host, "hashed"), [ownerPolicy()]);
    if (!created.ok) throw new Error(`Could not create the first provisioning service instance: ${created.reason}`);
  } else if (primary.hostName !== host) {
    // Started with another --host: the primary instance answers for the new name.
    await store.updateInstance({ ...primary, hostName: host, etag: newEtag() });
  }
  await instances.reload();
  return !primary;
}

/** On first start the built-in hubs are linked to the primary instance, like any hub (weight 1). */
async function linkBuiltinHubs(store: ProvisioningStore, instances: InstanceCache, hubs: BuiltinHubs): Promise<void> {
  const primary = instances.primary();
  if (!primary) return;
  const linked = await store.listLinkedHubs(primary.idScope);
  const names = new Set(linked.map((h) => h.name.toLowerCase()));
  const added: LinkedHub[] = hubs
    .all()
    .filter(({ hub }) => !names.has(hub.hostName.toLowerCase()))
    .map(({ hub }) => ({
      name: hub.hostName,
      connectionString: ownerConnectionString(hub),
      location: "local",
      allocationWeight: 1,
      applyAllocationPolicy: true,
    }));
  if (added.length > 0) await store.replaceLinkedHubs(primary.idScope, [...linked, ...added]);
}

/** Names the server certificate must cover: the host, 127.0.0.1, every instance and hub host. */
function certificateNames(host: string, instances: InstanceCache, hubs: BuiltinHubs) {
  const all = [host, ...instances.all().map((i) => i.hostName), ...hubs.all().map((h) => h.hub.hostName)];
  const dnsNames = [...new Set(all.filter((n) => !isIP(n)).map((n) => n.toLowerCase()))];
  const ipAddresses = [...new Set(["127.0.0.1", ...all.filter((n) => isIP(n))])];
  return { dnsNames: dnsNames.length > 0 ? dnsNames : ["localhost"], ipAddresses };
}

/**
 * A test hook (PROVISIO_TEST_CRASH_AT): the process kills itself at a point of a registration's
 * hub step, so the tests can show what settling does with each half-done state.
 */
function crashHook(): Pick<EngineOptions, "crashAt"> {
  const at = process.env.PROVISIO_TEST_CRASH_AT;
  return at === "afterHubWrite" || at === "afterCommit" ? { crashAt: at } : {};
}

/** The certificates an operator brings, read before anything else so a mistake stops the start. */
function operatorCertificates(config: ServeConfig): (() => LoadedOperatorTls) | undefined {
  if (config.tlsCert.length === 0 && config.tlsKey.length === 0) {
    if (config.tlsCa) throw new Error("--tls-ca names the CA of certificates given with --tls-cert; none were.");
    return undefined;
  }
  const files = { certFiles: config.tlsCert, keyFiles: config.tlsKey, caFile: config.tlsCa };
  const load = () => {
    const loaded = loadOperatorTls(files);
    // Devices dial --host: a certificate that does not cover it fails every one of them.
    const names = isIP(config.host)
      ? { dnsNames: [], ipAddresses: [config.host] }
      : { dnsNames: [config.host], ipAddresses: [] };
    if (uncoveredNames(loaded.material, names).length > 0) {
      const covered = certificateSubjectNames(loaded.material);
      throw new Error(
        `The server certificate (--tls-cert ${config.tlsCert[0]}) covers ${covered.join(", ") || "no host name"}, not --host ${config.host}: devices dialling ${config.host} would refuse it. Give --host (PROVISIO_HOST) a name the certificate covers, or bring a certificate for ${config.host}.`,
      );
    }
    return loaded;
  };
  load();
  return load;
}

/** The data directory, made if missing; an Error that says what to do when it cannot be written. */
function writableDataDir(dir: string): string {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const probe = join(dir, `.write-test-${process.pid}`);
    writeFileSync(probe, "");
    rmSync(probe);
    return dir;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why =
      e.code === "ENOTDIR" || e.code === "EEXIST"
        ? "a part of that path is a file, not a directory"
        : e.code === "EACCES" || e.code === "EPERM"
          ? "this user may not write there"
          : e.code === "EROFS"
            ? "it is on a read-only file system"
            : e.message;
    throw new Error(
      `The data directory ${dir} cannot be written (${why}). Choose one this user can write with --data-dir (PROVISIO_DATA_DIR).`,
      { cause: err },
    );
  }
}

export async function buildService(config: ServeConfig, log: Logger): Promise<ProvisioService> {
  const operatorTls = operatorCertificates(config);
  for (const hub of Object.keys(config.telemetryWebhooks)) {
    if (Number(hub.slice(4)) > config.hubs) {
      throw new Error(
        `PROVISIO_TELEMETRY_WEBHOOKS names ${hub}, but only ${config.hubs} built-in hub(s) run: raise --hubs or name another hub.`,
      );
    }
  }
  if (config.oidcConsoleClientId && !config.oidcIssuer) {
    throw new Error(
      "--oidc-console-client-id (PROVISIO_OIDC_CONSOLE_CLIENT_ID) names the console's client at an OpenID Connect issuer; give the issuer with --oidc-issuer.",
    );
  }
  const dataDir = writableDataDir(resolve(config.dataDir));
  const opened = await openStore({ ...config, dataDir }, log);
  const { store, cluster } = opened;
  const instances = new InstanceCache(store, store.changes);
  const hubs = new BuiltinHubs(opened.hubs, opened.hubEvents);
  const tlsDir = join(dataDir, "tls");
  // Nodes sharing a database bootstrap one at a time: the first creates the primary instance,
  // the built-in hubs and the development CA; the others find and use them.
  const bootstrap = async (): Promise<void> => {
    const firstStart = await ensurePrimaryInstance(store, instances, config.host);
    await hubs.load(config.hubs, config.host);
    if (firstStart) await linkBuiltinHubs(store, instances, hubs);
    if (cluster) {
      const shared = await cluster.sharedSecret("development-ca", async () =>
        JSON.stringify(await ensureCaFiles(tlsDir)),
      );
      installCa(tlsDir, JSON.parse(shared) as { certPem: string; keyPem: string });
    }
  };
  try {
    await (cluster ? cluster.exclusively("provisio-bootstrap", bootstrap) : bootstrap());
  } catch (e) {
    await store.close();
    throw e;
  }
  // One server certificate for the cluster too: the shared one while it covers every name, else
  // this node issues one from the shared CA and shares it. Nodes take turns (they hear of a new
  // instance at the same moment): the next one finds the new certificate and takes it.
  const ensureDevelopmentTls = async (): Promise<TlsMaterial> => {
    const names = certificateNames(config.host, instances, hubs);
    if (!cluster) return ensureTlsMaterial(tlsDir, names);
    return cluster.exclusively("provisio-server-certificate", async () => {
      const shared = await cluster.readSharedSecret("server-certificate");
      if (shared)
        installServerCertificates(tlsDir, JSON.parse(shared) as Parameters<typeof installServerCertificates>[1]);
      const material = await ensureTlsMaterial(tlsDir, names);
      const mine = JSON.stringify({ certPem: material.certPem, keyPem: material.keyPem, rsa: material.rsa });
      if (mine !== shared) await cluster.writeSharedSecret("server-certificate", mine);
      return material;
    });
  };
  // An operator's certificates are never reissued: names they miss are worth a warning.
  const warnUncovered = (material: TlsMaterial) => {
    const names = certificateNames(config.host, instances, hubs);
    const missing = uncoveredNames(material, { ...names, ipAddresses: [] });
    if (missing.length > 0) {
      log.warn({ missing }, "the server certificate does not cover these host names: clients using them will fail");
    }
  };
  const loadOperator = (load: () => LoadedOperatorTls): TlsMaterial => {
    const loaded = load();
    for (const c of loaded.served) log.info(c, "serving the operator's certificate");
    for (const w of loaded.warnings) log.warn(w);
    warnUncovered(loaded.material);
    if (config.tlsCa) return loaded.material;
    // Without --tls-ca devices are told to trust the top of the chain: a file of its own.
    mkdirSync(tlsDir, { recursive: true, mode: 0o700 });
    const caFile = join(tlsDir, "operator-ca.pem");
    writeFileSync(caFile, loaded.material.caPem, { mode: 0o644 });
    return { ...loaded.material, caFile };
  };
  let tls: TlsMaterial = operatorTls ? loadOperator(operatorTls) : await ensureDevelopmentTls();
  const tlsListeners: ((tls: TlsMaterial) => void)[] = [];
  const swapTls = (material: TlsMaterial) => {
    tls = material;
    for (const l of tlsListeners) l(tls);
  };
  // New instances bring new host names: the server certificate is reissued (same CA) and swapped
  // in before the write that announced them resolves.
  store.changes.subscribe(async (change) => {
    if (change.kind !== "instance" && change.kind !== "resync") return;
    // The cache reloads on a resync too, concurrently: the names must come from the new list.
    if (change.kind === "resync") await instances.reload();
    if (operatorTls) warnUncovered(tls);
    else swapTls(await ensureDevelopmentTls());
  });

  const telemetry = new TelemetryLog();
  // Every message also lands in its hub's Event Hubs-compatible endpoint.
  telemetry.watch((m) => hubs.byName(m.hub)?.eventHub.append(m));
  const webhooks = new TelemetryWebhooks(config.telemetryWebhooks, telemetry, log);
  const metrics = config.metricsPort === "off" ? undefined : new ProvisioMetrics();
  metrics?.measureDatabase(() => store.sizeBytes());
  let httpsPort = 0;
  const hubClients = new HubClientPool(
    // Built-in hubs over their REST API are dialed at this server's HTTPS port; other hubs where
    // PROVISIO_HUB_ADDRESSES says, else at their host name on 443.
    (hostName) =>
      hubs.byHost(hostName)
        ? { host: "127.0.0.1", port: httpsPort, ca: readFileSync(tls.caFile) }
        : config.hubAddresses[hostName.toLowerCase()],
    // By default they are reached in-process: same operations and answers, no TLS hop.
    (linked) => {
      const rt = config.builtinHubClient === "rest" ? undefined : hubs.byHost(linked.name);
      return rt && new InProcessHubClient(linked.connectionString, rt.hub, rt.registry);
    },
    metrics?.hubCall,
  );
  const inFlight = new LocalInFlight();
  // This process, as the carrier of registrations still working: a new id each start, so a
  // restarted node does not mistake its predecessor's abandoned operations for its own.
  const node = randomUUID();
  const diagnostics = diagnosticLog(log, config.diagnosticLog);

  const network = new NetworkFilters(config.privateNetworks);
  // Device polling is limited per device on each node (a device polls the node it is connected
  // to); its buckets are forgotten once full again, so a fleet leaves no trace.
  const polls = new RateLimiter(config.pollsPer10Seconds, 10_000);
  const pollPruner = setInterval(() => polls.prune(), 10_000).unref();
  const engine = new RegistrationEngine({
    store,
    network,
    instances,
    scopes: new ScopeViews(store, store.changes),
    hubs: hubClients,
    limiter: opened.rateLimit(config.registrationsPerMinute * config.units),
    ...(config.pollsPer10Seconds > 0 ? { pollLimiter: polls } : {}),
    records: new RecordCounts(store, config.maxRegistrations),
    faults: new FaultInjection(config.fault, (rule, service, registrationId) => {
      log.info({ fault: rule.text, service, registrationId }, "fault injected for a rehearsal");
      metrics?.injectedFault(service, rule.text);
    }),
    inFlight,
    log,
    ...(metrics ? { metrics } : {}),
    diagnostics,
    options: {
      answerWithinMs: config.registerWaitMs,
      retryAfterSeconds: config.pollAfterSeconds,
      carrier: { node, leaseMs: config.operationLeaseMs },
      maxInFlight: config.maxInFlight,
      ...crashHook(),
      webhook: { timeoutMs: config.webhookTimeoutMs, retryDelaysMs: webhookRetryDelays(config.webhookRetries) },
    },
  });
  // Open device connections a new network rule refuses are closed (the instance cache, which
  // subscribed first, already holds the new rules).
  store.changes.subscribe((change) => {
    if (change.kind === "instance") engine.networkChanged(change.idScope);
    else if (change.kind === "resync") engine.networkChanged();
  });
  const audit = new AuditTrail(store, log);
  const trimAudit = () =>
    void audit.trim().catch((err: unknown) => log.warn({ err }, "could not trim the audit trail"));
  const auditTrimmer = setInterval(trimAudit, 3600_000).unref();
  // Shared access policies, and bearer tokens of an OpenID Connect issuer when one is configured.
  const auth = new ServiceAuthenticator(
    (scope, name) => store.getPolicy(scope, name),
    config.oidcIssuer
      ? new OidcVerifier({
          issuer: config.oidcIssuer,
          audiences: config.oidcAudience,
          jwksUrl: config.oidcJwksUrl,
          roleClaims: config.oidcRoleClaims,
          roles: config.oidcRoles,
        })
      : undefined,
    config.oidcRoleClaims,
  );
  const https = httpsHandler({
    instances,
    serviceApi: new ServiceApi({
      store,
      auth,
      onInternal: (err: unknown) => log.error({ err }, "bulk item failed"),
      provisioning: engine,
      diagnostics,
      limits: config,
    }),
    managementApi: new ManagementApi(store, instances, auth, {
      minTlsVersion: config.minTlsVersion,
      bearerTokens: config.oidcIssuer !== undefined,
      limits: config,
      units: config.units,
    }),
    hubs,
    hubRestApi: new HubRestApi(telemetry, webhooks),
    deviceApi: new DeviceApi(engine),
    console: new ConsoleSite(
      config.oidcIssuer && config.oidcConsoleClientId
        ? { oidc: { issuer: config.oidcIssuer, clientId: config.oidcConsoleClientId, scope: config.oidcConsoleScope } }
        : {},
    ),
    network,
    log,
    diagnostics,
    audit,
    ...(config.serviceOperationsPerMinute > 0
      ? { serviceRate: opened.rateLimit(config.serviceOperationsPerMinute * config.units) }
      : {}),
    ...(metrics ? { metrics } : {}),
  });
  const routes = { hubs, telemetry, engine, log };
  const sweeper = setInterval(() => {
    store.deleteOperationsBefore(new Date(Date.now() - OPERATION_TTL_MS).toISOString()).catch((err: unknown) => {
      log.warn({ err }, "could not sweep old operations");
    });
    // Refused register calls are kept a week, and never more than a bounded number.
    store
      .trimRefusedAttempts(new Date(Date.now() - REFUSED_ATTEMPTS_TTL_MS).toISOString(), REFUSED_ATTEMPTS_KEPT)
      .catch((err: unknown) => log.warn({ err }, "could not trim refused registration attempts"));
  }, 60_000).unref();

  // Registrations that ended without settling their hub intents (a crash, a refusing old hub, a
  // late hub answer) are settled by whichever node gets to them first.
  const settling = new HubIntentSettling({ store, hubs: hubClients, node, leaseMs: config.operationLeaseMs, log });
  const settle = () =>
    void settling.settleDue().catch((err: unknown) => log.warn({ err }, "could not settle hub intents"));
  const settler = setInterval(settle, config.operationLeaseMs / 2).unref();
  settle();

  // The lease on this node's working registrations is renewed while they last (and only then).
  const renewer = setInterval(() => {
    if (inFlight.size === 0) return;
    const until = new Date(Date.now() + config.operationLeaseMs).toISOString();
    store.renewCarrier(node, until).catch((err: unknown) => {
      log.warn({ err }, "could not renew the lease on this node's registrations in progress");
    });
  }, config.operationLeaseMs / 4).unref();

  return {
    dataDir,
    store,
    instances,
    hubs,
    engine,
    telemetry,
    metrics,
    https,
    mqtt: (transport) => mqttRouter(routes, transport),
    tls: () => tls,
    onTlsChange: (listener) => tlsListeners.push(listener),
    async reloadTls() {
      swapTls(operatorTls ? loadOperator(operatorTls) : await ensureDevelopmentTls());
    },
    setHttpsPort: (port) => {
      httpsPort = port;
    },
    async info(ports) {
      const primary = instances.primary();
      const owner = primary ? await store.getPolicy(primary.idScope, OWNER_POLICY) : undefined;
      if (!primary || !owner)
        throw new Error("The primary instance or its provisioningserviceowner policy is missing.");
      return {
        idScope: primary.idScope,
        host: config.host,
        caFile: tls.caFile,
        ports,
        serviceConnectionString: formatConnectionString({
          hostName: config.host,
          keyName: owner.keyName,
          key: owner.primaryKey,
        }),
        hubs: hubs.all().map(({ hub }) => ({
          name: hub.name,
          hostName: hub.hostName,
          connectionString: ownerConnectionString(hub),
          eventHubConnectionString: eventHubConnectionString(hub),
        })),
      };
    },
    async drain(ms) {
      hubs.closeSessions();
      await inFlight.drain(ms);
    },
    async close() {
      clearInterval(sweeper);
      clearInterval(renewer);
      clearInterval(settler);
      clearInterval(auditTrimmer);
      clearInterval(pollPruner);
      hubClients.closeAll();
      webhooks.close();
      await diagnostics.close();
      await store.close();
    },
  };
}
