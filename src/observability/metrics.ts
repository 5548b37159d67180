// Prometheus metrics (prom-client): DPS's three metrics under the names and dimensions DPS users
// know (behaviors.md §11), and Provisio's own. The engine and the transports count through the
// small interfaces below; `provisio serve` serves the registry on --metrics-port.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/** The device protocols, as DPS's `protocol` dimension spells them. */
export type DeviceProtocol = "http" | "mqtt" | "mqttws" | "amqp" | "amqpws";

/** What the registration engine counts. */
export interface EngineMetrics {
  /** One attestation: the device proved who it is (or was refused). */
  attestation(service: string, protocol: DeviceProtocol | undefined, ok: boolean): void;
  /**
   * One finished registration: assigned (ok) or failed; `hub` is where it went, or ""; `attestation`
   * the enrollment's mechanism (symmetricKey, x509, tpm).
   */
  registration(
    service: string,
    hub: string,
    outcome: "assigned" | "failed" | "disabled",
    protocol: DeviceProtocol | undefined,
    attestation: string,
    seconds: number,
  ): void;
  /** A register refused over the rate limit. */
  throttled(service: string, protocol: DeviceProtocol | undefined): void;
  /** One call to a custom allocation webhook: its HTTP status ("error" when none came) and duration. */
  webhookCall(status: string, seconds: number): void;
}

/** What the hub client pool counts: each call to a hub's registry or twins. */
export type HubCallObserver = (hub: string, operation: string, ok: boolean, seconds: number) => void;

export const NO_METRICS: EngineMetrics = {
  attestation() {},
  registration() {},
  throttled() {},
  webhookCall() {},
};

export class ProvisioMetrics implements EngineMetrics {
  readonly registry = new Registry();
  readonly #attestations = new Counter({
    name: "dps_attestation_attempts_total",
    help: "Device attestation attempts (DPS: AttestationAttempts).",
    labelNames: ["provisioning_service_name", "status", "protocol"],
    registers: [this.registry],
  });
  readonly #registrations = new Counter({
    name: "dps_registration_attempts_total",
    help: "Device registration attempts (DPS: RegistrationAttempts).",
    labelNames: ["provisioning_service_name", "iot_hub_name", "status"],
    registers: [this.registry],
  });
  readonly #assignments = new Counter({
    name: "dps_device_assignments_total",
    help: "Devices assigned to an IoT hub (DPS: DeviceAssignments).",
    labelNames: ["provisioning_service_name", "iot_hub_name"],
    registers: [this.registry],
  });
  readonly #duration = new Histogram({
    name: "provisio_registration_duration_seconds",
    help: "From an attested register call to its final result, by protocol and outcome.",
    labelNames: ["protocol", "attestation", "outcome"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly #throttled = new Counter({
    name: "provisio_throttled_requests_total",
    help: "Register calls refused over the registration rate (429).",
    labelNames: ["provisioning_service_name", "protocol"],
    registers: [this.registry],
  });

  readonly #serviceRequests = new Counter({
    name: "provisio_service_api_requests_total",
    help: "Service API requests by operation (Get, Upsert, Delete, Query, Bulk) and HTTP status.",
    labelNames: ["provisioning_service_name", "operation", "status"],
    registers: [this.registry],
  });
  readonly #hubCalls = new Histogram({
    name: "provisio_hub_call_duration_seconds",
    help: "Calls to IoT hubs' registry and twins, by hub, operation and outcome.",
    labelNames: ["iot_hub_name", "operation", "outcome"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly #webhookCalls = new Histogram({
    name: "provisio_webhook_call_duration_seconds",
    help: "Calls to custom allocation webhooks, by HTTP status (error: none came).",
    labelNames: ["status"],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly #faults = new Counter({
    name: "provisio_injected_faults_total",
    help: "Faults injected for rehearsals (PROVISIO_FAULTS), by rule.",
    labelNames: ["provisioning_service_name", "fault"],
    registers: [this.registry],
  });
  /** Read when scraped: the listeners say how many connections they hold. */
  readonly #connectionCounts = new Map<string, () => number>();

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    const counts = this.#connectionCounts;
    new Gauge({
      name: "provisio_open_device_connections",
      help: "Open device connections (DPS and built-in hub devices) by protocol.",
      labelNames: ["protocol"],
      registers: [this.registry],
      collect() {
        for (const [protocol, count] of counts) this.set({ protocol }, count());
      },
    });
  }

  /** The database's size on disk, read at each scrape. */
  measureDatabase(bytes: () => Promise<number>): void {
    new Gauge({
      name: "provisio_database_size_bytes",
      help: "Size of the database: the SQLite file and its write-ahead log, or the PostgreSQL database.",
      registers: [this.registry],
      async collect() {
        this.set(await bytes());
      },
    });
  }

  /** A listener's open connections, read at each scrape (nothing is counted on the hot path). */
  countConnections(protocol: DeviceProtocol, count: () => number): void {
    this.#connectionCounts.set(protocol, count);
  }

  readonly hubCall: HubCallObserver = (hub, operation, ok, seconds) => {
    this.#hubCalls.observe({ iot_hub_name: hub, operation, outcome: ok ? "success" : "failure" }, seconds);
  };

  webhookCall(status: string, seconds: number): void {
    this.#webhookCalls.observe({ status }, seconds);
  }

  serviceRequest(service: string, operation: string, status: number): void {
    this.#serviceRequests.inc({ provisioning_service_name: service, operation, status: String(status) });
  }

  attestation(service: string, protocol: DeviceProtocol | undefined, ok: boolean): void {
    this.#attestations.inc({
      provisioning_service_name: service,
      status: ok ? "success" : "failure",
      protocol: protocol ?? "",
    });
  }

  registration(
    service: string,
    hub: string,
    outcome: "assigned" | "failed" | "disabled",
    protocol: DeviceProtocol | undefined,
    attestation: string,
    seconds: number,
  ): void {
    const status = outcome === "assigned" ? "success" : "failure";
    this.#registrations.inc({ provisioning_service_name: service, iot_hub_name: hub, status });
    if (outcome === "assigned") this.#assignments.inc({ provisioning_service_name: service, iot_hub_name: hub });
    this.#duration.observe({ protocol: protocol ?? "", attestation, outcome }, seconds);
  }

  /** One fault injected for a rehearsal, by the rule as written. */
  injectedFault(service: string, rule: string): void {
    this.#faults.inc({ provisioning_service_name: service, fault: rule });
  }

  throttled(service: string, protocol: DeviceProtocol | undefined): void {
    this.#throttled.inc({ provisioning_service_name: service, protocol: protocol ?? "" });
  }
}
