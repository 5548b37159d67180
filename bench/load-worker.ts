// A load-generator thread. Protocol with bench/run.ts (one measurement at a time):
//   main → {type:"prepare", port, caPem, work, concurrency}  worker builds its devices' requests
//                                                            (X.509: issues the missing leaves)
//   worker → {type:"ready"}
//   main → {type:"go", deadline}                             worker drives the load
//   worker → {type:"done", result}
//   main → {type:"forget"}                                   drop per-scenario state (issued leaves)
//   worker → {type:"ready"}
import { createSecureContext } from "node:tls";
import { parentPort } from "node:worker_threads";
import { prepareAmqpDevice, registerAmqp } from "../src/load/amqp-device.js";
import type { Endpoint } from "../src/load/dial.js";
import { type HttpsEndpoint, prepareHttpsDevice, registerHttps } from "../src/load/https-device.js";
import { type LoadResult, runLoad } from "../src/load/load-run.js";
import { prepareMqttDevice, registerMqtt } from "../src/load/mqtt-device.js";
import { BENCH_HOST, benchIdentities, type DeviceSpec } from "./load.js";
import { forgetX509Devices, prepareX509Devices, type X509Spec } from "./load-x509.js";

/** What to build, by scenario: HTTPS, MQTT and AMQP with a symmetric-key group, or X.509 group leaves. */
export type Work =
  | { kind: "https"; spec: DeviceSpec }
  | { kind: "mqtt"; spec: DeviceSpec }
  | { kind: "amqp"; spec: DeviceSpec }
  | { kind: "x509"; spec: X509Spec };

export type ToWorker =
  | { type: "prepare"; port: number; caPem: string; work: Work; concurrency: number }
  | { type: "go"; deadline: number }
  | { type: "forget" };

export type FromWorker =
  /** `issued`: X.509 leaves this preparation had to issue (not found in the cache). */
  { type: "ready"; issued?: number } | { type: "done"; result: LoadResult } | { type: "error"; message: string };

const port = parentPort;
if (!port) throw new Error("bench/load-worker.js runs as a worker thread");

/** A prepared measurement: start it and it resolves to the result. */
type Run = (deadline: number) => Promise<LoadResult>;
let prepared: Run | undefined;
const contexts = new Map<string, Endpoint["secureContext"]>();

const reply = (m: FromWorker): void => port.postMessage(m);

function sharedContext(caPem: string): Endpoint["secureContext"] {
  let secureContext = contexts.get(caPem);
  if (!secureContext) {
    secureContext = createSecureContext({ ca: caPem });
    contexts.set(caPem, secureContext);
  }
  return secureContext;
}

async function prepare(m: Extract<ToWorker, { type: "prepare" }>): Promise<{ run: Run; issued?: number }> {
  const { work, concurrency } = m;
  switch (work.kind) {
    case "https": {
      const target: HttpsEndpoint = {
        ...BENCH_HOST,
        port: m.port,
        secureContext: sharedContext(m.caPem),
        ...(process.env.BENCH_CA_PER_CONNECTION === "1" ? { caPerConnection: m.caPem } : {}),
      };
      const devices = benchIdentities(work.spec, "dev").map((id) => prepareHttpsDevice(id, "localhost"));
      return { run: (deadline) => runLoad(devices, (d) => registerHttps(target, d), concurrency, deadline) };
    }
    case "mqtt": {
      const target = { ...BENCH_HOST, port: m.port, secureContext: sharedContext(m.caPem) };
      const devices = benchIdentities(work.spec, "mqtt").map(prepareMqttDevice);
      return { run: (deadline) => runLoad(devices, (d) => registerMqtt(target, d), concurrency, deadline) };
    }
    case "amqp": {
      const target = { ...BENCH_HOST, port: m.port, secureContext: sharedContext(m.caPem) };
      const devices = benchIdentities(work.spec, "amqp").map((id) => prepareAmqpDevice(id, "localhost"));
      return { run: (deadline) => runLoad(devices, (d) => registerAmqp(target, d), concurrency, deadline) };
    }
    case "x509": {
      const { devices, issued } = await prepareX509Devices(work.spec, m.port, m.caPem);
      return {
        run: (deadline) => runLoad(devices, (d) => registerHttps(d.target, d.device), concurrency, deadline),
        issued,
      };
    }
  }
}

port.on("message", (m: ToWorker) => {
  if (m.type === "prepare") {
    prepared = undefined;
    prepare(m).then(
      ({ run, issued }) => {
        prepared = run;
        reply(issued !== undefined ? { type: "ready", issued } : { type: "ready" });
      },
      (err: unknown) => reply({ type: "error", message: String(err) }),
    );
    return;
  }
  if (m.type === "forget") {
    forgetX509Devices();
    reply({ type: "ready" });
    return;
  }
  const job = prepared;
  prepared = undefined;
  if (!job) {
    reply({ type: "error", message: "go before prepare" });
    return;
  }
  job(m.deadline).then(
    (result) =>
      port.postMessage({ type: "done", result } satisfies FromWorker, [result.latencies.buffer as ArrayBuffer]),
    (err: unknown) => reply({ type: "error", message: String(err) }),
  );
});
