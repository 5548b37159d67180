// Jobs and queries on a built-in hub (issue "The built-in hub" point 5): the real azure-iothub
// JobClient schedules a twin update and a direct method over the devices a condition matches;
// Registry.createQuery reads them back with the WHERE forms fleets use.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import deviceSdk from "azure-iot-device";
import deviceMqtt from "azure-iot-device-mqtt";
import iothub, { type Registry } from "azure-iothub";
import { type DeviceClient, hubAgent, hubOf, registryClient } from "../support/hub-clients.js";
import { call } from "../support/management.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { until } from "../support/until.js";

const { Client: DeviceClientCtor } = deviceSdk;
const { Mqtt } = deviceMqtt;

interface Job {
  jobId: string;
  status: string;
  type: string;
  failureReason?: string;
  deviceJobStatistics: { deviceCount: number; failedCount: number; succeededCount: number; pendingCount: number };
}

describe("jobs and queries on the built-in hub", () => {
  let p: ProvisioProcess;
  let registry: Registry;
  let jobs: iothub.JobClient;
  const open: DeviceClient[] = [];
  const keys = new Map<string, string>();

  before(async () => {
    p = await startProvisio();
    registry = registryClient(p);
    jobs = iothub.JobClient.fromConnectionString(hubOf(p).connectionString);
    (jobs as unknown as { _restApiClient: { setOptions(o: unknown): void } })._restApiClient.setOptions({
      http: { agent: hubAgent(p) },
    });
    for (const [id, site, floor] of [
      ["job-dev-1", "berlin", 1],
      ["job-dev-2", "berlin", 2],
      ["job-dev-3", "berlin", 3],
      ["job-dev-4", "munich", 1],
    ] as const) {
      const d = (await registry.create({ deviceId: id })).responseBody;
      keys.set(id, d.authentication?.symmetricKey?.primaryKey ?? "");
      await registry.updateTwin(id, { tags: { site, floor } }, "*");
    }
  });
  after(async () => {
    for (const c of open) await c.close().catch(() => undefined);
    await p?.dispose();
  });

  const job = async (jobId: string): Promise<Job> => (await jobs.getJob(jobId)).jobStatus as Job;
  const finished = async (jobId: string): Promise<Job> => {
    await until(async () => ["completed", "failed", "cancelled"].includes((await job(jobId)).status), 20_000, jobId);
    return job(jobId);
  };
  const query = async (text: string): Promise<unknown[]> => (await registry.createQuery(text).nextAsTwin()).result;

  test("queries: comparisons, OR, IN, IS_DEFINED, STARTSWITH and COUNT()", async () => {
    const ids = async (where: string) =>
      ((await query(`SELECT * FROM devices WHERE ${where}`)) as { deviceId: string }[]).map((t) => t.deviceId).sort();
    assert.deepEqual(await ids("tags.site = 'berlin' AND tags.floor > 1"), ["job-dev-2", "job-dev-3"]);
    assert.deepEqual(await ids("tags.site = 'munich' OR tags.floor >= 3"), ["job-dev-3", "job-dev-4"]);
    assert.deepEqual(await ids("deviceId IN ['job-dev-1', 'job-dev-4'] AND NOT (tags.site = 'munich')"), ["job-dev-1"]);
    assert.deepEqual(await ids("IS_DEFINED(tags.floor) AND STARTSWITH(deviceId, 'job-dev-')"), [
      "job-dev-1",
      "job-dev-2",
      "job-dev-3",
      "job-dev-4",
    ]);
    const count = await registry.createQuery("SELECT COUNT() AS n FROM devices WHERE tags.site = 'berlin'").next();
    assert.deepEqual(count.result, [{ n: 3 }]);
  });

  test("a twin update job sets tags and desired properties on every matching device", async () => {
    const patch = { etag: "*", tags: { campaign: "fw-2.1" }, properties: { desired: { firmware: "2.1.0" } } };
    const scheduled = (await jobs.scheduleTwinUpdate("twin-job-1", "tags.site = 'berlin'", patch)).jobStatus as Job;
    assert.equal(scheduled.jobId, "twin-job-1");
    assert.equal(scheduled.type, "scheduleUpdateTwin");
    const done = await finished("twin-job-1");
    assert.equal(done.status, "completed");
    assert.deepEqual(done.deviceJobStatistics, {
      deviceCount: 3,
      failedCount: 0,
      succeededCount: 3,
      runningCount: 0,
      pendingCount: 0,
    });
    const twin = (await registry.getTwin("job-dev-2")).responseBody;
    assert.equal(twin.tags.campaign, "fw-2.1");
    assert.equal(twin.tags.site, "berlin", "a patch keeps the other tags");
    assert.equal(twin.properties.desired.firmware, "2.1.0");
    assert.equal((await registry.getTwin("job-dev-4")).responseBody.tags.campaign, undefined);
  });

  test("a device method job reaches the connected devices; an offline one counts as failed", async () => {
    for (const id of ["job-dev-1", "job-dev-2"]) {
      const client = DeviceClientCtor.fromConnectionString(
        `HostName=${hubOf(p).hostName};DeviceId=${id};SharedAccessKey=${keys.get(id)};GatewayHostName=127.0.0.1:${p.info.ports.mqtt}`,
        Mqtt,
      );
      open.push(client);
      await client.setOptions({ ca: p.ca.toString() });
      await client.open();
      client.onDeviceMethod("reprovision", (_req, res) => res.send(200, { ok: id }, () => undefined));
    }
    await new Promise((r) => setTimeout(r, 300)); // the SDK subscribes after open resolves
    await jobs.scheduleDeviceMethod("method-job-1", "tags.site = 'berlin'", {
      methodName: "reprovision",
      payload: null,
      responseTimeoutInSeconds: 5,
    });
    const done = await finished("method-job-1");
    assert.equal(done.status, "completed");
    assert.equal(done.deviceJobStatistics.deviceCount, 3);
    assert.equal(done.deviceJobStatistics.succeededCount, 2);
    assert.equal(done.deviceJobStatistics.failedCount, 1, "job-dev-3 is not connected");

    const listed = (await call(p, "GET", "/jobs/v2/query?api-version=2021-04-12&jobType=scheduleDeviceMethod", {
      host: hubOf(p).hostName,
      connectionString: hubOf(p).connectionString,
    }).then((r) => r.json())) as Job[];
    assert.deepEqual(
      listed.map((j) => j.jobId),
      ["method-job-1"],
    );
  });

  test("a job scheduled for later can be cancelled; bad, duplicate and unknown jobs are refused", async () => {
    const later = new Date(Date.now() + 60_000);
    await jobs.scheduleTwinUpdate("later-job", "tags.site = 'munich'", { etag: "*", tags: { x: 1 } }, later, 60);
    assert.equal((await job("later-job")).status, "queued");
    const cancelled = (await jobs.cancelJob("later-job")).jobStatus as Job;
    assert.equal(cancelled.status, "cancelled");

    const hub = { host: hubOf(p).hostName, connectionString: hubOf(p).connectionString };
    const put = (id: string, body: unknown) =>
      call(p, "PUT", `/jobs/v2/${id}?api-version=2021-04-12`, { ...hub, body: JSON.stringify(body) });
    const dup = await put("later-job", {
      type: "scheduleUpdateTwin",
      queryCondition: "tags.x = 1",
      updateTwin: { tags: {} },
    });
    assert.equal(dup.status, 409);
    assert.equal(dup.headers["iothub-errorcode"], "JobAlreadyExists");
    for (const [body, mention] of [
      [{ type: "reboot", queryCondition: "tags.x = 1" }, /'type' must be scheduleUpdateTwin or scheduleDeviceMethod/],
      [{ type: "scheduleUpdateTwin", updateTwin: { tags: {} } }, /'queryCondition' is required/],
      [{ type: "scheduleUpdateTwin", queryCondition: "tags.x ~ 1", updateTwin: { tags: {} } }, /Cannot read the query/],
      [{ type: "scheduleUpdateTwin", queryCondition: "tags.x = 1" }, /'updateTwin' must hold tags/],
      [{ type: "scheduleDeviceMethod", queryCondition: "tags.x = 1", cloudToDeviceMethod: {} }, /'methodName' must be/],
      [
        {
          type: "scheduleUpdateTwin",
          queryCondition: "tags.x = 1",
          updateTwin: { tags: {} },
          maxExecutionTimeInSeconds: 0,
        },
        /'maxExecutionTimeInSeconds' must be/,
      ],
    ] as const) {
      const r = await put("bad-job", body);
      assert.equal(r.status, 400, r.text);
      assert.match(r.text, mention);
    }
    const unknown = await call(p, "GET", "/jobs/v2/nobody?api-version=2021-04-12", hub);
    assert.equal(unknown.status, 404);
    assert.equal(unknown.headers["iothub-errorcode"], "JobNotFound");
  });
});
