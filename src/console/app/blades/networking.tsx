// Networking: public network access and the ordered IP filter rules (management.md §4), which
// Provisio enforces on the device and service APIs. The first matching rule decides.
import { useEffect, useState } from "preact/hooks";
import { can } from "../api.js";
import type { IpFilterRule } from "../service-resource.js";
import { useServiceSettings } from "../service-settings.js";
import { useSession } from "../session.js";
import { ErrorNote, Loading, NeedsRight, TableHead } from "../ui.js";

type Access = "Disabled" | "Selected" | "All";

export function Networking() {
  const { who } = useSession();
  const { service, error, saved, changed, save: saveProperties } = useServiceSettings();
  const [access, setAccess] = useState<Access>("All");
  const [rules, setRules] = useState<IpFilterRule[]>([]);
  useEffect(() => {
    const p = service.data?.properties;
    if (!p) return;
    setRules(p.ipFilterRules);
    setAccess(p.publicNetworkAccess === "Disabled" ? "Disabled" : p.ipFilterRules.length > 0 ? "Selected" : "All");
  }, [service.data]);
  if (!can(who, "ServiceConfig")) {
    return (
      <NeedsRight blade="Networking">
        Network settings are read and changed with a policy that has ServiceConfig.
      </NeedsRight>
    );
  }
  const edit = (i: number, patch: Partial<IpFilterRule>) => {
    changed();
    setRules(rules.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  };
  const move = (i: number, by: number) => {
    const next = [...rules];
    const [r] = next.splice(i, 1);
    if (r) next.splice(i + by, 0, r);
    setRules(next);
  };
  const save = async (e: Event) => {
    e.preventDefault();
    if (
      access === "Disabled" &&
      !confirm("With public access disabled, this console cannot reach the service either. Go on?")
    )
      return;
    await saveProperties({
      publicNetworkAccess: access === "Disabled" ? "Disabled" : "Enabled",
      ipFilterRules: access === "All" ? [] : rules,
    });
  };
  return (
    <section>
      <h1>Networking</h1>
      {service.loading ? <Loading what="network settings" /> : null}
      <ErrorNote error={error} what="Not saved" />
      <form onSubmit={save} class="form">
        <fieldset>
          <legend>Public network access</legend>
          {(
            [
              ["All", "All networks"],
              ["Selected", "Selected IP ranges"],
              ["Disabled", "Disabled"],
            ] as const
          ).map(([value, label]) => (
            <label key={value} class="check">
              <input type="radio" name="access" checked={access === value} onChange={() => setAccess(value)} />
              {label}
            </label>
          ))}
        </fieldset>
        {access === "Selected" ? (
          <>
            <table>
              <caption>IP filter rules, in the order they are checked</caption>
              <TableHead columns={["Order", "Rule name", "Address range", "Action", "Applies to", ""]} />
              <tbody>
                {rules.map((r, i) => (
                  <tr key={i}>
                    <td>
                      <button
                        type="button"
                        disabled={i === 0}
                        onClick={() => move(i, -1)}
                        aria-label={`Move ${r.filterName} up`}
                      >
                        ↑
                      </button>
                      <button
                        type="button"
                        disabled={i === rules.length - 1}
                        onClick={() => move(i, 1)}
                        aria-label={`Move ${r.filterName} down`}
                      >
                        ↓
                      </button>
                    </td>
                    <td>
                      <input
                        aria-label={`Name of rule ${i + 1}`}
                        value={r.filterName}
                        onInput={(e) => edit(i, { filterName: e.currentTarget.value })}
                      />
                    </td>
                    <td>
                      <input
                        aria-label={`Address range of rule ${i + 1}`}
                        value={r.ipMask}
                        onInput={(e) => edit(i, { ipMask: e.currentTarget.value })}
                      />
                    </td>
                    <td>
                      <select
                        aria-label={`Action of rule ${i + 1}`}
                        value={r.action}
                        onChange={(e) => edit(i, { action: e.currentTarget.value as IpFilterRule["action"] })}
                      >
                        <option value="Accept">Allow</option>
                        <option value="Reject">Block</option>
                      </select>
                    </td>
                    <td>
                      <select
                        aria-label={`Target of rule ${i + 1}`}
                        value={r.target ?? "all"}
                        onChange={(e) => edit(i, { target: e.currentTarget.value as IpFilterRule["target"] })}
                      >
                        <option value="all">Device and service APIs</option>
                        <option value="deviceApi">Device API</option>
                        <option value="serviceApi">Service API</option>
                      </select>
                    </td>
                    <td>
                      <button
                        type="button"
                        class="danger"
                        onClick={() => setRules(rules.filter((_, j) => j !== i))}
                        aria-label={`Remove rule ${i + 1}`}
                      >
                        Remove
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            <button
              type="button"
              onClick={() =>
                setRules([
                  ...rules,
                  { filterName: `rule${rules.length + 1}`, action: "Accept", ipMask: "127.0.0.1", target: "all" },
                ])
              }
            >
              Add IP rule
            </button>
          </>
        ) : null}
        <div class="actions">
          <button type="submit" class="primary">
            Save network settings
          </button>
        </div>
        {saved ? (
          <p role="status" class="ok">
            Saved.
          </p>
        ) : null}
      </form>
    </section>
  );
}
