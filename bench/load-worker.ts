// A load-generator thread. Protocol with bench/run.ts (one measurement at a time):
//   main → {type:"prepare", port, caPem, spec, concurrency}  worker builds its devices' requests
//   worker → {type:"ready"}
//   main → {type:"go", deadline}                             worker drives the load
//   worker → {type:"done", result}
import { createSecureContext } from "node:tls";
import { parentPort } from "node:worker_threads";
import { type Device, type DeviceSpec, type LoadResult, prepareDevices, runLoad, type Target } from "./load.js";

export type ToWorker =
  | { type: "prepare"; port: number; caPem: string; spec: DeviceSpec; concurrency: number }
  | { type: "go"; deadline: number };

export type FromWorker = { type: "ready" } | { type: "done"; result: LoadResult } | { type: "error"; message: string };

const port = parentPort;
if (!port) throw new Error("bench/load-worker.js runs as a worker thread");

let prepared: { target: Target; devices: Device[]; concurrency: number } | undefined;
const contexts = new Map<string, Target["secureContext"]>();

const reply = (m: FromWorker): void => port.postMessage(m);

port.on("message", (m: ToWorker) => {
  if (m.type === "prepare") {
    let secureContext = contexts.get(m.caPem);
    if (!secureContext) {
      secureContext = createSecureContext({ ca: m.caPem });
      contexts.set(m.caPem, secureContext);
    }
    const target: Target = {
      port: m.port,
      secureContext,
      ...(process.env.BENCH_CA_PER_CONNECTION === "1" ? { caPerConnection: m.caPem } : {}),
    };
    prepared = { target, devices: prepareDevices(m.spec), concurrency: m.concurrency };
    reply({ type: "ready" });
    return;
  }
  const job = prepared;
  prepared = undefined;
  if (!job) {
    reply({ type: "error", message: "go before prepare" });
    return;
  }
  runLoad(job.target, job.devices, job.concurrency, m.deadline).then(
    (result) =>
      port.postMessage({ type: "done", result } satisfies FromWorker, [result.latencies.buffer as ArrayBuffer]),
    (err: unknown) => reply({ type: "error", message: String(err) }),
  );
});
