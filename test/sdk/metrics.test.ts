// DPS's metrics on Prometheus (behaviors.md §11), scraped from a real `provisio serve` after the
// real SDK registered devices over every transport: attestation attempts by protocol and status,
// registration attempts and assignments by hub, the registration duration histogram.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { ProvisioningServiceClient } from "azure-iot-provisioning-service";
import { DEVICE_TRANSPORTS, registerWithKey } from "../support/device-clients.js";
import { connectDps } from "../support/dps-mqtt.js";
import { enrollIndividual } from "../support/enrollments.js";
import { hubOf } from "../support/hub-clients.js";
import { scrape } from "../support/metrics.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { serviceClient } from "../support/service-client.js";

const PROTOCOL: Record<string, string> = {
  HTTPS: "http",
  MQTT: "mqtt",
  "MQTT over WebSockets": "mqttws",
  AMQP: "amqp",
  "AMQP over WebSockets": "amqpws",
};

describe("metrics", () => {
  let p: ProvisioProcess;
  let svc: ProvisioningServiceClient;
  before(async () => {
    p = await startProvisio();
    svc = serviceClient(p);
  });
  after(async () => {
    await p.dispose();
  });

  test("provisio.json names the metrics port; /metrics answers in Prometheus text, anything else 404", async () => {
    assert.ok(Number.isInteger(p.info.ports.metrics) && (p.info.ports.metrics ?? 0) > 0);
    const scraped = await scrape(p);
    assert.equal(scraped.status, 200);
    assert.match(scraped.type, /^text\/plain/);
    assert.ok(scraped.series.has("process_cpu_seconds_total"), "process metrics");
  });

  test("--metrics-port off serves no metrics and names no port", async () => {
    const quiet = await startProvisio({ args: ["--metrics-port", "off"] });
    try {
      assert.equal(quiet.info.ports.metrics, undefined);
    } finally {
      await quiet.dispose();
    }
  });

  test("every protocol counts its attestations, registrations, assignments and durations", async () => {
    const service = 'provisioning_service_name="provisio"';
    const hub = `iot_hub_name="${hubOf(p).hostName}"`;
    for (const t of DEVICE_TRANSPORTS) {
      const id = `metrics-${PROTOCOL[t.name]}`;
      const key = await enrollIndividual(svc, id);
      const { transport, host } = t.make(p);
      assert.equal((await registerWithKey(p, transport, id, key, undefined, host)).status, "assigned");
    }
    // A wrong key (attestation failure) and a disabled enrollment (a failed registration).
    await enrollIndividual(svc, "metrics-wrong");
    await assert.rejects(
      registerWithKey(
        p,
        DEVICE_TRANSPORTS[0]?.make(p).transport,
        "metrics-wrong",
        Buffer.alloc(32, 1).toString("base64"),
      ),
    );
    const disabledKey = await enrollIndividual(svc, "metrics-disabled", { provisioningStatus: "disabled" });
    await assert.rejects(
      registerWithKey(p, DEVICE_TRANSPORTS[0]?.make(p).transport, "metrics-disabled", disabledKey),
      /disabled/,
    );

    const { series } = await scrape(p);
    for (const protocol of Object.values(PROTOCOL)) {
      assert.equal(
        series.get(`dps_attestation_attempts_total{${service},status="success",protocol="${protocol}"}`),
        1,
        `attestations over ${protocol} (a disabled enrollment proves nothing: not counted)`,
      );
      assert.equal(
        series.get(
          `provisio_registration_duration_seconds_count{protocol="${protocol}",attestation="symmetricKey",outcome="assigned"}`,
        ),
        1,
        protocol,
      );
    }
    assert.equal(series.get(`dps_attestation_attempts_total{${service},status="failure",protocol="http"}`), 1);
    assert.equal(series.get(`dps_registration_attempts_total{${service},${hub},status="success"}`), 5);
    assert.equal(series.get(`dps_device_assignments_total{${service},${hub}}`), 5);
    assert.equal(series.get(`dps_registration_attempts_total{${service},iot_hub_name="",status="failure"}`), 1);
    // Each assigned device's identity was written to its hub once.
    assert.equal(
      series.get(`provisio_hub_call_duration_seconds_count{${hub},operation="createOrUpdateDevice",outcome="success"}`),
      5,
    );
    // The enrollments above: seven upserts through the service API.
    assert.equal(series.get(`provisio_service_api_requests_total{${service},operation="Upsert",status="200"}`), 7);
  });

  test("a wrong key is an attestation failure on every protocol", async () => {
    await enrollIndividual(svc, "metrics-refused");
    const before = (await scrape(p)).series;
    for (const t of DEVICE_TRANSPORTS) {
      const { transport, host } = t.make(p);
      await assert.rejects(
        registerWithKey(p, transport, "metrics-refused", Buffer.alloc(32, 2).toString("base64"), undefined, host),
      );
    }
    const after = (await scrape(p)).series;
    for (const protocol of Object.values(PROTOCOL)) {
      const series = `dps_attestation_attempts_total{provisioning_service_name="provisio",status="failure",protocol="${protocol}"}`;
      assert.equal((after.get(series) ?? 0) - (before.get(series) ?? 0), 1, protocol);
    }
  });

  test("the database's size is measured when scraped", async () => {
    const { series } = await scrape(p);
    assert.ok((series.get("provisio_database_size_bytes") ?? 0) > 4096);
  });

  test("open device connections are counted by protocol when scraped", async () => {
    const device = await connectDps(p, "mqtt", { registrationId: "metrics-open" });
    try {
      const { series } = await scrape(p);
      assert.ok((series.get('provisio_open_device_connections{protocol="mqtt"}') ?? 0) >= 1);
      for (const protocol of ["amqp", "mqttws", "amqpws", "http"]) {
        assert.ok(series.has(`provisio_open_device_connections{protocol="${protocol}"}`), protocol);
      }
    } finally {
      await device.end();
    }
  });
});
