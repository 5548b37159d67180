// Devices and modules on a built-in hub over AMQP (issue "The built-in hub", AMQP for devices):
// the real azure-iot-device-amqp transports (Amqp on the AMQP port, AmqpWs on the HTTPS port),
// CBS put-token with the device's own key or X.509 without CBS, for telemetry, twins,
// cloud-to-device messages from the real service Client, and direct methods.
import assert from "node:assert/strict";
import { once } from "node:events";
import { after, before, describe, test } from "node:test";
import deviceSdk from "azure-iot-device";
import deviceAmqp from "azure-iot-device-amqp";
import iothub, { type Registry } from "azure-iothub";
import rhea from "rhea";
import { createSasToken } from "../../src/attestation/sas-token.js";
import { selfSignedDeviceCert } from "../support/certs.js";
import {
  collectFeedback,
  type DeviceClient,
  hubAgent,
  hubOf,
  redirectAmqp,
  registryClient,
  selfSignedHubDevice,
  x509DeviceClient,
} from "../support/hub-clients.js";
import { call } from "../support/management.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { resolveAllTo } from "../support/service-client.js";
import { until } from "../support/until.js";

// The SDK packages are CommonJS without named-export hints.
const { Client, ModuleClient, Message } = deviceSdk;
const { Amqp, AmqpWs } = deviceAmqp;

interface KeptMessage {
  deviceId: string;
  transport: string;
  systemProperties: Record<string, string>;
  properties: Record<string, string>;
  payload: unknown;
}
interface MethodResult {
  status: number;
  payload: unknown;
}
type C2dMessage = { data: Buffer; messageId: string; properties: { getValue(k: string): string } };

describe("AMQP devices on the built-in hub", () => {
  let p: ProvisioProcess;
  let registry: Registry;
  let service: iothub.Client;
  let hostName: string;
  const open: { close(): Promise<unknown> }[] = [];

  before(async () => {
    p = await startProvisio();
    registry = registryClient(p);
    hostName = hubOf(p).hostName;
    // The service client: AMQP (cloud-to-device) at the AMQP port, REST (methods) at the HTTPS port.
    const ServiceAmqp = redirectAmqp(iothub.Amqp, (c) => ({
      ...c,
      uri: `amqps://${hostName}:${p.info.ports.amqp}`,
      sslOptions: { ca: p.ca.toString() },
      policyOverride: { host: "127.0.0.1", servername: hostName },
    }));
    service = iothub.Client.fromConnectionString(hubOf(p).connectionString, ServiceAmqp as never);
    (service as unknown as { _restApiClient: { setOptions(o: unknown): void } })._restApiClient.setOptions({
      http: { agent: hubAgent(p) },
    });
    await service.open();
  });
  after(async () => {
    for (const c of open) await c.close().catch(() => undefined);
    await service?.close().catch(() => undefined);
    await p?.dispose();
  });

  const keyOf = async (deviceId: string): Promise<string> =>
    (await registry.create({ deviceId })).responseBody.authentication?.symmetricKey?.primaryKey ?? "";

  /** A device client over AMQP/TLS: the port rides in GatewayHostName, so the open frame names 127.0.0.1. */
  const amqpDevice = async (deviceId: string, key: string): Promise<DeviceClient> => {
    const client = Client.fromConnectionString(
      `HostName=${hostName};DeviceId=${deviceId};SharedAccessKey=${key};GatewayHostName=127.0.0.1:${p.info.ports.amqp}`,
      Amqp,
    );
    open.push(client);
    await client.setOptions({ ca: p.ca.toString() });
    return client;
  };

  const kept = async (deviceId: string): Promise<KeptMessage[]> => {
    const r = await call(p, "GET", `/_provisio/messages?deviceId=${encodeURIComponent(deviceId)}`, {
      connectionString: hubOf(p).connectionString,
    });
    assert.equal(r.status, 200, r.text);
    return r.json() as KeptMessage[];
  };

  const invoke = (deviceId: string, params: Record<string, unknown>, moduleId?: string): Promise<MethodResult> =>
    new Promise((resolve, reject) => {
      const done = (err: Error | null | undefined, result: unknown) =>
        err ? reject(err) : resolve(result as MethodResult);
      if (moduleId) service.invokeDeviceMethod(deviceId, moduleId, params as never, done);
      else service.invokeDeviceMethod(deviceId, params as never, done);
    });

  test("telemetry with its properties is kept, and the device is Connected until it closes", async () => {
    const client = await amqpDevice("amqp-dev-1", await keyOf("amqp-dev-1"));
    await client.open();
    const msg = new Message(JSON.stringify({ temperature: 21.5 }));
    msg.messageId = "amqp-msg-1";
    msg.correlationId = "corr-1";
    msg.contentType = "application/json";
    msg.contentEncoding = "utf-8";
    msg.properties.add("alert", "high temp");
    await client.sendEvent(msg);
    await client.sendEvent(new Message("plain text"));
    const messages = await kept("amqp-dev-1");
    assert.deepEqual(
      messages.map((m) => [m.transport, m.payload]),
      [
        ["amqp", { temperature: 21.5 }],
        ["amqp", "plain text"],
      ],
    );
    assert.deepEqual(messages[0]?.properties, { alert: "high temp" });
    assert.equal(messages[0]?.systemProperties.messageId, "amqp-msg-1");
    assert.equal(messages[0]?.systemProperties.correlationId, "corr-1");
    assert.equal(messages[0]?.systemProperties.contentType, "application/json");
    assert.equal(messages[0]?.systemProperties.contentEncoding, "utf-8");
    assert.equal((await registry.get("amqp-dev-1")).responseBody.connectionState, "Connected");
    await client.close();
    await until(
      async () => String((await registry.get("amqp-dev-1")).responseBody.connectionState) === "Disconnected",
      5_000,
      "the device to be Disconnected",
    );
  });

  test("ids keep their case: a device named with capitals connects and sends", async () => {
    const client = await amqpDevice("Amqp-Capital-1", await keyOf("Amqp-Capital-1"));
    await client.open();
    await client.sendEvent(new Message("hello"));
    assert.equal((await kept("Amqp-Capital-1"))[0]?.payload, "hello");
  });

  test("twin: GET, reported PATCH, and desired changes pushed over the twin links", async () => {
    const client = await amqpDevice("amqp-twin", await keyOf("amqp-twin"));
    await client.open();
    await registry.updateTwin("amqp-twin", { properties: { desired: { interval: 30 } } }, "*");
    const twin = await client.getTwin();
    assert.equal(twin.properties.desired.interval, 30);
    assert.equal(twin.properties.desired.$version, 2);
    await new Promise<void>((resolve, reject) =>
      twin.properties.reported.update({ firmware: "2.0.0" }, (err?: Error) => (err ? reject(err) : resolve())),
    );
    const serviceView = (await registry.getTwin("amqp-twin")).responseBody;
    assert.equal(serviceView.properties.reported.firmware, "2.0.0");

    const deltas: Record<string, unknown>[] = [];
    // The first listener makes the SDK subscribe (PUT on the twin link) in the background: changes
    // are made until one is pushed.
    twin.on("properties.desired", (delta: Record<string, unknown>) => deltas.push(delta));
    let interval = 99;
    await until(
      async () => {
        await registry.updateTwin("amqp-twin", { properties: { desired: { interval: interval++ } } }, "*");
        await new Promise((r) => setTimeout(r, 100));
        return deltas.some((d) => typeof d.interval === "number" && d.interval >= 99);
      },
      5_000,
      "a desired change pushed",
    );
    const pushed = deltas.find((d) => typeof d.interval === "number" && d.interval >= 99);
    assert.equal(pushed?.$version, (pushed?.interval as number) - 96);
  });

  test("cloud-to-device: the service Client's message arrives with its properties; complete, reject and abandon settle it", async () => {
    const client = await amqpDevice("amqp-c2d", await keyOf("amqp-c2d"));
    const feedback = await collectFeedback(service);
    const received: C2dMessage[] = [];
    let abandoned = false;
    client.on("message", (m: C2dMessage) => {
      received.push(m);
      const body = m.data.toString();
      if (body === "take") void client.complete(m as never);
      else if (body === "refuse") void client.reject(m as never);
      else if (!abandoned) {
        abandoned = true;
        void client.abandon(m as never);
      } else void client.complete(m as never);
    });
    await client.open();

    const send = async (body: string) => {
      const m = new Message(body);
      m.messageId = `amqp-${body}`;
      m.ack = "full";
      m.properties.add("kind", body);
      await service.send("amqp-c2d", m);
    };
    // One at a time: the SDK's rhea 1.0 merges the dispositions of back-to-back deliveries with
    // different outcomes into one range (the first's outcome), so a reject and an abandon settled
    // in the same tick would both arrive as rejections.
    for (const [i, body] of ["take", "refuse", "again"].entries()) {
      await send(body);
      await until(async () => feedback.length === i + 1, 10_000, `feedback for '${body}'`);
    }
    const outcome = Object.fromEntries(feedback.map((f) => [f.originalMessageId, f.statusCode]));
    assert.deepEqual(outcome, { "amqp-take": "Success", "amqp-refuse": "Rejected", "amqp-again": "Success" });
    const first = received.find((m) => m.data.toString() === "take");
    assert.equal(first?.messageId, "amqp-take");
    assert.equal(first?.properties.getValue("kind"), "take");
    // Abandoned once, delivered again.
    assert.equal(received.filter((m) => m.data.toString() === "again").length, 2);
  });

  test("direct methods: the service Client invokes, the device answers on its methods links", async () => {
    const client = await amqpDevice("amqp-method", await keyOf("amqp-method"));
    await client.open();
    client.onDeviceMethod("reboot", (request, response) => {
      response.send(200, { echoed: request.payload, took: "1s" }, () => undefined);
    });
    const result = await invoke("amqp-method", {
      methodName: "reboot",
      payload: { delay: 5 },
      responseTimeoutInSeconds: 10,
      // onDeviceMethod attaches the methods links in the background: the call waits for them.
      connectTimeoutInSeconds: 5,
    });
    assert.equal(result.status, 200);
    assert.deepEqual(result.payload, { echoed: { delay: 5 }, took: "1s" });
  });

  test("over WebSockets on the HTTPS port, with the hub's host name in the open frame", async () => {
    const key = await keyOf("amqpws-dev");
    // AmqpWs dials wss://{host}:443/$iothub/websocket: point it at provisio's HTTPS port.
    const LocalAmqpWs = redirectAmqp(AmqpWs, (c) => ({
      ...c,
      uri: `wss://${hostName}:${p.info.ports.https}/$iothub/websocket`,
      sslOptions: { ...c.sslOptions, lookup: resolveAllTo("127.0.0.1") },
    }));
    const client = Client.fromConnectionString(
      `HostName=${hostName};DeviceId=amqpws-dev;SharedAccessKey=${key}`,
      LocalAmqpWs,
    );
    open.push(client);
    await client.setOptions({ ca: p.ca.toString() });
    await client.open();
    await client.sendEvent(new Message(JSON.stringify({ over: "websocket" })));
    assert.deepEqual(
      (await kept("amqpws-dev")).map((m) => [m.transport, m.payload]),
      [["amqp-ws", { over: "websocket" }]],
    );
    const twin = await client.getTwin();
    assert.equal(twin.properties.reported.$version, 1);
  });

  test("X.509: a self-signed device authenticates with its client certificate, without CBS", async () => {
    const cert = await selfSignedHubDevice(registry, "amqp-x509");
    const gatewayHostName = `127.0.0.1:${p.info.ports.amqp}`;
    const device = x509DeviceClient(
      { host: hostName, deviceId: "amqp-x509", gatewayHostName, cert: cert.certPem, key: cert.keyPem },
      Amqp,
    );
    open.push(device);
    await device.setOptions({ ca: p.ca.toString() });
    await device.open();
    await device.sendEvent(new Message("signed"));
    assert.equal((await kept("amqp-x509"))[0]?.payload, "signed");

    const other = await selfSignedDeviceCert("amqp-x509");
    const impostor = x509DeviceClient(
      { host: hostName, deviceId: "amqp-x509", gatewayHostName, cert: other.certPem, key: other.keyPem },
      Amqp,
    );
    open.push(impostor);
    await impostor.setOptions({ ca: p.ca.toString() });
    await impostor.open().catch(() => undefined);
    await assert.rejects(impostor.sendEvent(new Message("forged")), "a certificate the identity does not list");
    assert.equal((await kept("amqp-x509")).length, 1);
  });

  test("a module client over AMQP: telemetry with its module id, its twin and a module method", async () => {
    await registry.create({ deviceId: "amqp-edge" });
    const m = (await registry.addModule({ deviceId: "amqp-edge", moduleId: "filter" } as never)).responseBody as {
      authentication: { symmetricKey: { primaryKey: string } };
    };
    const client = ModuleClient.fromConnectionString(
      `HostName=${hostName};DeviceId=amqp-edge;ModuleId=filter;SharedAccessKey=${m.authentication.symmetricKey.primaryKey};GatewayHostName=127.0.0.1:${p.info.ports.amqp}`,
      Amqp,
    );
    open.push(client);
    await client.setOptions({ ca: p.ca.toString() });
    await client.open();
    await client.sendOutputEvent("alerts", new Message(JSON.stringify({ level: 3 })));
    const [message] = await kept("amqp-edge");
    assert.deepEqual(message?.payload, { level: 3 });
    assert.equal(message?.systemProperties["iothub-connection-module-id"], "filter");
    assert.equal(message?.systemProperties.outputName, "alerts");

    const twin = await client.getTwin();
    await new Promise<void>((resolve, reject) =>
      twin.properties.reported.update({ status: "running" }, (err?: Error) => (err ? reject(err) : resolve())),
    );
    const seen = (await registry.getModuleTwin("amqp-edge", "filter")).responseBody as unknown as {
      properties: { reported: { status: string } };
    };
    assert.equal(seen.properties.reported.status, "running");

    client.onMethod("flush", (_request, response) => response?.send(200, { flushed: 3 }, () => undefined));
    const result = await invoke(
      "amqp-edge",
      { methodName: "flush", payload: null, connectTimeoutInSeconds: 5 },
      "filter",
    );
    assert.deepEqual(result, { status: 200, payload: { flushed: 3 } });
  });

  test("refusals: a wrong key, an unknown device and a disabled one fail open; no message is kept", async () => {
    await keyOf("amqp-refused");
    const wrong = await amqpDevice("amqp-refused", Buffer.alloc(32, 7).toString("base64"));
    await assert.rejects(wrong.open(), (e: Error) => e.name === "UnauthorizedError", "a wrong key");
    const unknown = await amqpDevice("amqp-nobody", Buffer.alloc(32, 7).toString("base64"));
    await assert.rejects(unknown.open(), (e: Error) => e.name === "UnauthorizedError", "an unknown device");
    const key = await keyOf("amqp-disabled");
    const d = (await registry.get("amqp-disabled")).responseBody;
    await registry.update({ ...d, status: "disabled" });
    const disabled = await amqpDevice("amqp-disabled", key);
    await assert.rejects(disabled.open(), (e: Error) => e.name === "UnauthorizedError", "a disabled device");
    assert.equal((await kept("amqp-refused")).length, 0);
  });

  /** A device token for the hub, as the SDKs sign it. */
  const token = (deviceId: string, key: string, se = Math.floor(Date.now() / 1000) + 600) =>
    createSasToken(key, encodeURIComponent(`${hostName}/devices/${deviceId}`), se);

  /** A bare rhea connection (what the C SDK's uAMQP does by hand), with CBS put-token. */
  const rawConnection = async (openHostname: string, sasl?: "MSSBCBS") => {
    const container = rhea.create_container({ id: `raw-${crypto.randomUUID()}` });
    const connection = container.connect({
      host: "127.0.0.1",
      port: p.info.ports.amqp,
      transport: "tls",
      ca: p.ca,
      servername: hostName,
      hostname: openHostname,
      reconnect: false,
      // uAMQP (the C SDK) asks for Azure's MSSBCBS mechanism by name, with an empty response.
      ...(sasl
        ? {
            sasl_mechanisms: {
              MSSBCBS: () => ({ start: (done: (e: unknown, r: Buffer) => void) => done(undefined, Buffer.alloc(0)) }),
            },
          }
        : {}),
    } as never);
    open.push({ close: async () => void connection.close() });
    // Refusals arrive as errors on links and the connection; the tests read them from the close events.
    for (const event of ["connection_error", "sender_error", "receiver_error", "error"]) {
      connection.on(event as "error", () => undefined);
    }
    await once(connection, "connection_open");
    const cbsOut = connection.open_sender("$cbs");
    const cbsIn = connection.open_receiver({ source: { address: "$cbs" } });
    await once(cbsIn, "receiver_open");
    const putToken = async (name: string, text: string): Promise<number> => {
      const id = crypto.randomUUID();
      cbsOut.send({
        to: "$cbs",
        reply_to: "cbs",
        message_id: id,
        application_properties: { operation: "put-token", type: "servicebus.windows.net:sastoken", name },
        body: text,
      });
      for (;;) {
        const [ctx] = (await once(cbsIn, "message")) as [rhea.EventContext];
        if (ctx.message?.correlation_id === id) return ctx.message.application_properties?.["status-code"] as number;
      }
    };
    return { connection, putToken };
  };

  const conditionOf = (ctx: rhea.EventContext): string | undefined =>
    ((ctx.sender ?? ctx.receiver)?.error as { condition?: string } | undefined)?.condition;

  test("raw AMQP: a token for another device opens no link of this one; an expiring token ends the links", async () => {
    const key = await keyOf("amqp-raw");
    const otherKey = await keyOf("amqp-raw-other");
    const { connection, putToken } = await rawConnection(hostName);
    assert.equal(await putToken(`${hostName}/devices/amqp-raw-other`, token("amqp-raw-other", otherKey)), 200);
    const refused = connection.open_sender("/devices/amqp-raw/messages/events");
    const [closed] = (await once(refused, "sender_close")) as [rhea.EventContext];
    assert.equal(conditionOf(closed), "amqp:unauthorized-access");
    assert.equal(await putToken("cbs-bad", "not a token"), 401);

    // Within the clock skew IoT Hub allows (300 s) for two more seconds: accepted, then the links end.
    const now = Math.floor(Date.now() / 1000);
    assert.equal(await putToken(`${hostName}/devices/amqp-raw`, token("amqp-raw", key, now - 298)), 200);
    const events = connection.open_sender("/devices/amqp-raw/messages/events");
    await once(events, "sendable");
    // The device was all the connection carried: the connection closes with the reason.
    const [ended] = (await once(connection, "connection_close")) as [rhea.EventContext];
    const error = ended.connection.error as { condition?: string; description?: string } | undefined;
    assert.equal(error?.condition, "amqp:unauthorized-access");
    assert.match(String(error?.description), /expired/);
  });

  test("raw AMQP: one connection carries several devices, each on its own session, with C SDK addresses", async () => {
    const keys = { a: await keyOf("amqp-mux-a"), b: await keyOf("amqp-mux-b") };
    // Dialed by IP, as a gateway would: the tokens name the hub.
    const { connection, putToken } = await rawConnection("127.0.0.1");
    assert.equal(await putToken(`${hostName}/devices/amqp-mux-a`, token("amqp-mux-a", keys.a)), 200);
    assert.equal(await putToken(`${hostName}/devices/amqp-mux-b`, token("amqp-mux-b", keys.b)), 200);
    const send = async (deviceId: string, body: string) => {
      const session = connection.create_session();
      session.begin();
      const sender = session.open_sender({
        target: { address: `amqps://${hostName}/devices/${deviceId}/messages/events` },
      });
      await once(sender, "sendable");
      sender.send({ message_id: `${deviceId}-1`, body: rhea.message.data_section(Buffer.from(body)) });
      await once(sender, "accepted");
    };
    await send("amqp-mux-a", "from a");
    await send("amqp-mux-b", "from b");
    assert.equal((await kept("amqp-mux-a"))[0]?.payload, "from a");
    assert.equal((await kept("amqp-mux-b"))[0]?.payload, "from b");
    assert.equal(String((await registry.get("amqp-mux-a")).responseBody.connectionState), "Connected");

    // The same device on a second connection takes over: the first one's link is stolen.
    const methods = connection.open_receiver({ source: { address: "/devices/amqp-mux-a/methods/devicebound" } });
    await once(methods, "receiver_open");
    const second = await rawConnection(hostName);
    assert.equal(await second.putToken(`${hostName}/devices/amqp-mux-a`, token("amqp-mux-a", keys.a)), 200);
    second.connection.open_receiver({ source: { address: "/devices/amqp-mux-a/methods/devicebound" } });
    const [stolen] = (await once(methods, "receiver_close")) as [rhea.EventContext];
    assert.equal(conditionOf(stolen), "amqp:link:stolen");
    // The other device on the first connection carries on.
    await send("amqp-mux-b", "still here");
    assert.equal((await kept("amqp-mux-b")).length, 2);
  });

  test("raw AMQP: a link to an unknown node, a service link without a service token, and a twin request before its answer link", async () => {
    const key = await keyOf("amqp-odd");
    const { connection, putToken } = await rawConnection(hostName);
    const nowhere = connection.open_sender("/devices/amqp-odd/files");
    assert.equal(conditionOf(((await once(nowhere, "sender_close")) as [rhea.EventContext])[0]), "amqp:not-found");
    const devicebound = connection.open_sender("/messages/devicebound");
    assert.equal(
      conditionOf(((await once(devicebound, "sender_close")) as [rhea.EventContext])[0]),
      "amqp:unauthorized-access",
    );
    assert.equal(await putToken(`${hostName}/devices/amqp-odd`, token("amqp-odd", key)), 200);
    const twin = connection.open_sender("/devices/amqp-odd/twin");
    await once(twin, "sendable");
    twin.send({ correlation_id: "c1", message_annotations: { operation: "GET" }, body: " " });
    const [rejected] = (await once(twin, "rejected")) as [rhea.EventContext];
    const error = (rejected.delivery?.remote_state as { error?: { condition?: string; description?: string } })?.error;
    assert.equal(error?.condition, "amqp:precondition-failed");
    assert.match(String(error?.description), /attach the twin receiver link/);
  });

  test("raw AMQP, bad input: a malformed reported patch, an unknown twin operation, an oversized message, a batch of garbage", async () => {
    const key = await keyOf("amqp-bad");
    const { connection, putToken } = await rawConnection(hostName);
    assert.equal(await putToken(`${hostName}/devices/amqp-bad`, token("amqp-bad", key)), 200);
    const twinOut = connection.open_sender("/devices/amqp-bad/twin");
    const twinIn = connection.open_receiver({ source: { address: "/devices/amqp-bad/twin" } });
    await Promise.all([once(twinOut, "sendable"), once(twinIn, "receiver_open")]);
    const ask = async (correlation: string, annotations: Record<string, string>, body: string) => {
      twinOut.send({
        correlation_id: correlation,
        message_annotations: annotations,
        body: rhea.message.data_section(Buffer.from(body)),
      });
      for (;;) {
        const [ctx] = (await once(twinIn, "message")) as [rhea.EventContext];
        if (ctx.message?.correlation_id === correlation) return ctx.message;
      }
    };
    const bad = await ask("p1", { operation: "PATCH", resource: "/properties/reported" }, "{not json");
    assert.equal(bad.message_annotations?.status, 400);
    const body = JSON.parse((bad.body as { content: Buffer }).content.toString()) as {
      errorCode: number;
      message: string;
    };
    assert.equal(body.errorCode, 400001);
    const odd = await ask("p2", { operation: "POST", resource: "/properties/desired" }, "{}");
    assert.equal(odd.message_annotations?.status, 400);
    assert.match((odd.body as { content: Buffer }).content.toString(), /operation 'POST'/);
    assert.equal((await registry.getTwin("amqp-bad")).responseBody.properties.reported.$version, 1, "nothing written");

    const events = connection.open_sender("/devices/amqp-bad/messages/events");
    await once(events, "sendable");
    events.send({ body: rhea.message.data_section(Buffer.alloc(256 * 1024 + 1, 1)) });
    const [big] = (await once(events, "rejected")) as [rhea.EventContext];
    const bigError = (big.delivery?.remote_state as { error?: { condition?: string } })?.error;
    assert.equal(bigError?.condition, "amqp:link:message-size-exceeded");
    const garbage = rhea.message.encode({ body: rhea.message.data_sections([Buffer.from([0xff, 0x01])]) } as never);
    events.send(garbage as never, undefined, 0x80013700);
    const [undecodable] = (await once(events, "rejected")) as [rhea.EventContext];
    const garbageError = (undecodable.delivery?.remote_state as { error?: { condition?: string } })?.error;
    assert.equal(garbageError?.condition, "amqp:decode-error");
    assert.equal((await kept("amqp-bad")).length, 0);
  });

  test("the C SDK's ways: MSSBCBS, a token signed for the dialed name, telemetry in IoT Hub's batch format", async () => {
    const key = await keyOf("amqp-c-style");
    // The C SDK with GatewayHostName=127.0.0.1 dials 127.0.0.1 and signs for it.
    const { connection, putToken } = await rawConnection("127.0.0.1", "MSSBCBS");
    const forDialed = createSasToken(
      key,
      encodeURIComponent("127.0.0.1/devices/amqp-c-style"),
      Math.floor(Date.now() / 1000) + 600,
    );
    const forElsewhere = createSasToken(
      key,
      encodeURIComponent("10.9.9.9/devices/amqp-c-style"),
      Math.floor(Date.now() / 1000) + 600,
    );
    assert.equal(await putToken("10.9.9.9/devices/amqp-c-style", forElsewhere), 401);
    assert.equal(await putToken("127.0.0.1/devices/amqp-c-style", forDialed), 200);
    const sender = connection.open_sender({
      target: { address: `amqps://${hostName}/devices/amqp-c-style/messages/events` },
    });
    await once(sender, "sendable");
    const inner = (body: string, i: number) =>
      rhea.message.encode({
        message_id: `batch-${i}`,
        application_properties: { n: i },
        body: rhea.message.data_section(Buffer.from(body)),
      });
    const batch = rhea.message.encode({
      body: rhea.message.data_sections([inner("one", 1), inner("two", 2)]),
    } as never);
    sender.send(batch as never, undefined, 0x80013700);
    await once(sender, "accepted");
    const messages = await kept("amqp-c-style");
    assert.deepEqual(
      messages.map((m) => [m.payload, m.systemProperties.messageId, m.properties.n]),
      [
        ["one", "batch-1", "1"],
        ["two", "batch-2", "2"],
      ],
    );
  });
});
