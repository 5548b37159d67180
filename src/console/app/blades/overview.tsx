// Overview: the ID scope and endpoints, how much is stored, registrations over time, recent failures.
import { can } from "../api.js";
import { BarChart } from "../chart.js";
import { useSession } from "../session.js";
import { type DiagnosticLine, perMinute, recentFailures } from "../time-series.js";
import { ErrorNote, Loading, useAsync, when } from "../ui.js";

interface Statistics {
  individualEnrollments: number;
  enrollmentGroups: number;
  registrations: number;
}

export function Overview() {
  const { api, who, servicePath } = useSession();
  const stats = useAsync(() => api.get<Statistics>("/statistics"), []);
  const lines = useAsync(
    () =>
      can(who, "RegistrationStatusRead")
        ? api.get<DiagnosticLine[]>("/diagnostics", { category: "DeviceOperations" })
        : Promise.resolve([]),
    [],
  );
  const resource = useAsync(
    () =>
      can(who, "ServiceConfig")
        ? api.get<{ properties: { allocationPolicy: string; iotHubs: unknown[] } }>(servicePath)
        : Promise.resolve(undefined),
    [],
  );
  const device = location.host;
  return (
    <section>
      <h1>Overview</h1>
      <dl class="facts">
        <dt>ID Scope</dt>
        <dd class="mono">{who.service.idScope}</dd>
        <dt>Provisioning service</dt>
        <dd>{who.service.name}</dd>
        <dt>Service endpoint</dt>
        <dd class="mono">{who.service.hostName}</dd>
        <dt>Global device endpoint</dt>
        <dd class="mono">{device}</dd>
        <dt>Device protocols on this port</dt>
        <dd>HTTPS, MQTT over WebSockets, AMQP over WebSockets (MQTT and AMQP have their own ports: provisio.json)</dd>
        {resource.data ? (
          <>
            <dt>Allocation policy</dt>
            <dd>{resource.data.properties.allocationPolicy}</dd>
            <dt>Linked hubs</dt>
            <dd>{resource.data.properties.iotHubs.length}</dd>
          </>
        ) : null}
      </dl>
      <h2>Counts</h2>
      <ErrorNote error={stats.error} what="Could not count enrollments" />
      {stats.data ? (
        <dl class="facts">
          <dt>Individual enrollments</dt>
          <dd>{stats.data.individualEnrollments}</dd>
          <dt>Enrollment groups</dt>
          <dd>{stats.data.enrollmentGroups}</dd>
          <dt>Registration records</dt>
          <dd>{stats.data.registrations}</dd>
        </dl>
      ) : stats.loading ? (
        <Loading what="counts" />
      ) : null}
      <h2>Registrations over time</h2>
      <ErrorNote error={lines.error} what="Could not read the diagnostic log" />
      {lines.data ? (
        <BarChart title="Device operations" buckets={perMinute(lines.data, "DeviceOperations", 30, Date.now())} />
      ) : null}
      <h2>Recent failures</h2>
      {lines.data && recentFailures(lines.data, "DeviceOperations", 10).length === 0 ? (
        <p class="muted">No failed device operations in this node's recent log.</p>
      ) : null}
      <ul class="failures">
        {lines.data
          ? recentFailures(lines.data, "DeviceOperations", 10).map((l) => (
              <li key={`${l.TimeGenerated}${l.properties.id}`}>
                <span class="muted">{when(l.TimeGenerated)}</span> <span class="mono">{l.properties.id}</span>{" "}
                {l.OperationName} {l.ResultSignature}: {l.ResultDescription}
              </li>
            ))
          : null}
      </ul>
    </section>
  );
}
