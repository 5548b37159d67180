// Built-in hubs: the devices of each hub linked to this service that Provisio itself runs, their
// twins and their latest telemetry. The hub is called on its own host name with its own policy
// (listLinkedHubKeys), as any IoT Hub client would; hubs elsewhere (Azure) are listed only.
import { useEffect, useState } from "preact/hooks";
import { parseConnectionString } from "../../../domain/connection-string.js";
import { Api, can, sasCredentials } from "../api.js";
import type { LinkedHub } from "../service-resource.js";
import { useSession } from "../session.js";
import { Dialog, ErrorNote, Loading, NeedsRight, TableHead, useAsync, when } from "../ui.js";

interface DeviceIdentity {
  deviceId: string;
  status: string;
  connectionState?: string;
  lastActivityTime?: string;
  authentication?: { type?: string };
}

interface Message {
  deviceId: string;
  enqueuedTimeUtc: string;
  transport?: string;
  payload: unknown;
}

/** A client of one hub, at the same port as the console: built-in hubs share the HTTPS listener. */
function hubApi(hub: LinkedHub): Api | undefined {
  const cs = parseConnectionString(hub.connectionString);
  if (!cs) return undefined;
  const port = location.port ? `:${location.port}` : "";
  return new Api(sasCredentials(cs), `https://${hub.name}${port}`);
}

export function BuiltinHubs() {
  const { api, who, servicePath } = useSession();
  const hubs = useAsync(
    () =>
      can(who, "ServiceConfig")
        ? api.call<{ value: LinkedHub[] }>("POST", `${servicePath}/listLinkedHubKeys`).then((r) => r.body.value)
        : Promise.resolve([]),
    [],
  );
  const [open, setOpen] = useState<LinkedHub | undefined>();
  if (!can(who, "ServiceConfig")) {
    return <NeedsRight blade="Built-in hubs">The hubs' own keys are read with ServiceConfig.</NeedsRight>;
  }
  return (
    <section>
      <h1>Built-in hubs</h1>
      {hubs.loading ? <Loading what="linked hubs" /> : null}
      <ErrorNote error={hubs.error} />
      <ul>
        {hubs.data?.map((h) => (
          <li key={h.name}>
            <button type="button" class="link" onClick={() => setOpen(h)}>
              {h.name}
            </button>
          </li>
        ))}
      </ul>
      {open ? <HubDevices hub={open} /> : null}
    </section>
  );
}

function HubDevices({ hub }: { hub: LinkedHub }) {
  const client = hubApi(hub);
  const devices = useAsync(
    () => (client ? client.get<DeviceIdentity[]>("/devices") : Promise.reject(new Error("No connection string."))),
    [hub.name],
  );
  const [twinOf, setTwinOf] = useState<string | undefined>();
  return (
    <div>
      <h2>Devices of {hub.name}</h2>
      {devices.loading ? <Loading what="devices" /> : null}
      {devices.error ? (
        <div role="alert" class="error">
          {hub.name} did not answer ({devices.error.message}). It is not a built-in hub of this Provisio, or this
          browser does not trust its certificate yet: open{" "}
          <a
            href={`https://${hub.name}${location.port ? `:${location.port}` : ""}/devices`}
            target="_blank"
            rel="noreferrer"
          >
            the hub
          </a>{" "}
          once and accept it.
        </div>
      ) : null}
      <table>
        <caption>Device identities</caption>
        <TableHead columns={["Device ID", "Status", "Connection", "Authentication", "Last activity"]} />
        <tbody>
          {devices.data?.map((d) => (
            <tr key={d.deviceId}>
              <td>
                <button type="button" class="link" onClick={() => setTwinOf(d.deviceId)}>
                  {d.deviceId}
                </button>
              </td>
              <td>{d.status}</td>
              <td>{d.connectionState ?? "—"}</td>
              <td>{d.authentication?.type ?? "—"}</td>
              <td>{when(d.lastActivityTime)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {client ? <Telemetry client={client} /> : null}
      {twinOf && client ? <Twin client={client} deviceId={twinOf} onClose={() => setTwinOf(undefined)} /> : null}
    </div>
  );
}

function Twin(props: { client: Api; deviceId: string; onClose: () => void }) {
  const twin = useAsync(() => props.client.get(`/twins/${encodeURIComponent(props.deviceId)}`), [props.deviceId]);
  return (
    <Dialog title={`Twin of ${props.deviceId}`} onClose={props.onClose}>
      {twin.loading ? <Loading what="the twin" /> : null}
      <ErrorNote error={twin.error} />
      {twin.data ? <pre class="mono">{JSON.stringify(twin.data, null, 2)}</pre> : null}
    </Dialog>
  );
}

/** The hub's latest device-to-cloud messages, polled every two seconds while the blade is open. */
function Telemetry({ client }: { client: Api }) {
  const [messages, setMessages] = useState<Message[]>([]);
  const [error, setError] = useState<Error | undefined>();
  useEffect(() => {
    let stopped = false;
    const poll = async () => {
      try {
        const m = await client.get<Message[]>("/_provisio/messages");
        if (stopped) return;
        setMessages(m.slice(-50).reverse());
        setError(undefined);
      } catch (e) {
        if (!stopped) setError(e as Error);
      }
    };
    void poll();
    const t = setInterval(poll, 2000);
    return () => {
      stopped = true;
      clearInterval(t);
    };
  }, [client]);
  return (
    <div>
      <h2>Live telemetry</h2>
      <ErrorNote error={error} what="Could not read telemetry" />
      <table aria-live="polite">
        <caption>Latest device-to-cloud messages</caption>
        <TableHead columns={["Enqueued", "Device", "Transport", "Body"]} />
        <tbody>
          {messages.map((m, i) => (
            <tr key={i}>
              <td>{when(m.enqueuedTimeUtc)}</td>
              <td>{m.deviceId}</td>
              <td>{m.transport ?? ""}</td>
              <td class="mono">{typeof m.payload === "string" ? m.payload : JSON.stringify(m.payload)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {messages.length === 0 ? <p class="muted">No message yet.</p> : null}
    </div>
  );
}
