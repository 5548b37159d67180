// Linked hubs: weights, the apply-allocation switch, location; add and unlink; and the service's
// allocation policy (the portal's "Manage allocation policy").
import { useEffect, useState } from "preact/hooks";
import { can } from "../api.js";
import type { LinkedHub } from "../service-resource.js";
import { useServiceSettings } from "../service-settings.js";
import { useSession } from "../session.js";
import { Dialog, ErrorNote, Field, Loading, NeedsRight } from "../ui.js";

export function LinkedHubs() {
  const { who } = useSession();
  const { service, error, saved, changed, save } = useServiceSettings();
  const [hubs, setHubs] = useState<LinkedHub[]>([]);
  const [policy, setPolicy] = useState("Hashed");
  const [adding, setAdding] = useState(false);
  useEffect(() => {
    if (service.data) {
      setHubs(service.data.properties.iotHubs);
      setPolicy(service.data.properties.allocationPolicy);
    }
  }, [service.data]);
  if (!can(who, "ServiceConfig")) {
    return (
      <NeedsRight blade="Linked hubs">
        Linked hubs are read and changed with a policy that has ServiceConfig.
      </NeedsRight>
    );
  }
  const change = (i: number, patch: Partial<LinkedHub>) => {
    changed();
    setHubs(hubs.map((h, j) => (j === i ? { ...h, ...patch } : h)));
  };
  return (
    <section>
      <h1>Linked hubs</h1>
      {service.loading ? <Loading what="linked hubs" /> : null}
      <ErrorNote error={error} what="Not saved" />
      {saved ? (
        <p role="status" class="ok">
          Saved.
        </p>
      ) : null}
      <form
        class="form inline"
        onSubmit={(e) => {
          e.preventDefault();
          void save({ allocationPolicy: policy });
        }}
      >
        <Field label="Allocation policy of the service" hint="Enrollments without their own policy use it.">
          <select value={policy} onChange={(e) => setPolicy(e.currentTarget.value)}>
            <option value="Hashed">Evenly weighted distribution</option>
            <option value="GeoLatency">Lowest latency</option>
            <option value="Static">Static configuration</option>
          </select>
        </Field>
        <button type="submit">Save allocation policy</button>
      </form>
      <table>
        <caption>Linked IoT hubs</caption>
        <thead>
          <tr>
            {["Name", "Location", "Allocation weight", "Apply allocation policy", "Connection string", "Actions"].map(
              (c) => (
                <th scope="col" key={c}>
                  {c}
                </th>
              ),
            )}
          </tr>
        </thead>
        <tbody>
          {hubs.map((h, i) => (
            <tr key={h.name}>
              <td>{h.name}</td>
              <td>
                <input
                  aria-label={`Location of ${h.name}`}
                  value={h.location}
                  onInput={(e) => change(i, { location: e.currentTarget.value })}
                />
              </td>
              <td>
                <input
                  type="number"
                  min={1}
                  max={1000}
                  aria-label={`Allocation weight of ${h.name}`}
                  value={h.allocationWeight ?? 1}
                  onInput={(e) => change(i, { allocationWeight: Number(e.currentTarget.value) })}
                />
              </td>
              <td>
                <input
                  type="checkbox"
                  aria-label={`Apply allocation policy to ${h.name}`}
                  checked={h.applyAllocationPolicy ?? true}
                  onChange={(e) => change(i, { applyAllocationPolicy: e.currentTarget.checked })}
                />
              </td>
              <td class="mono">{h.connectionString}</td>
              <td>
                <button
                  type="button"
                  class="danger"
                  aria-label={`Unlink ${h.name}`}
                  onClick={() => {
                    if (confirm(`Unlink ${h.name}? Devices already there stay; new ones go elsewhere.`)) {
                      void save({ iotHubs: hubs.filter((_, j) => j !== i) });
                    }
                  }}
                >
                  Unlink
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <div class="actions">
        <button type="button" class="primary" onClick={() => save({ iotHubs: hubs })}>
          Save linked hubs
        </button>
        <button type="button" onClick={() => setAdding(true)}>
          Link a hub
        </button>
      </div>
      {adding ? (
        <AddHub
          onAdd={(hub) => {
            setAdding(false);
            void save({ iotHubs: [...hubs, hub] });
          }}
          onClose={() => setAdding(false)}
        />
      ) : null}
    </section>
  );
}

function AddHub(props: { onAdd: (h: LinkedHub) => void; onClose: () => void }) {
  const [cs, setCs] = useState("");
  const [location, setLocation] = useState("local");
  const [weight, setWeight] = useState(1);
  return (
    <Dialog title="Link a hub" onClose={props.onClose}>
      <form
        class="form"
        onSubmit={(e) => {
          e.preventDefault();
          const name = /HostName=([^;]+)/i.exec(cs)?.[1] ?? "";
          props.onAdd({
            name,
            connectionString: cs.trim(),
            location,
            allocationWeight: weight,
            applyAllocationPolicy: true,
          });
        }}
      >
        <Field label="IoT hub connection string" hint="A policy with RegistryWrite and ServiceConnect (iothubowner).">
          <input value={cs} onInput={(e) => setCs(e.currentTarget.value)} autoComplete="off" />
        </Field>
        <Field label="Location">
          <input value={location} onInput={(e) => setLocation(e.currentTarget.value)} />
        </Field>
        <Field label="Allocation weight">
          <input
            type="number"
            min={1}
            max={1000}
            value={weight}
            onInput={(e) => setWeight(Number(e.currentTarget.value))}
          />
        </Field>
        <button type="submit" class="primary">
          Link
        </button>
      </form>
    </Dialog>
  );
}
