// The read-change-save cycle of the blades that edit the service resource (linked hubs,
// networking): read it while the caller has ServiceConfig, save changed properties guarded by
// the etag read, say "Saved." or why not, and read it again after a save.
import { useState } from "preact/hooks";
import { can } from "./api.js";
import { putServiceProperties, readService, type ServiceResource } from "./service-resource.js";
import { useSession } from "./session.js";
import { useAsync } from "./ui.js";

export function useServiceSettings() {
  const { api, who, servicePath } = useSession();
  const [version, setVersion] = useState(0);
  const [error, setError] = useState<Error | undefined>();
  const [saved, setSaved] = useState(false);
  const service = useAsync(
    () => (can(who, "ServiceConfig") ? readService(api, servicePath) : Promise.resolve(undefined)),
    [version],
  );
  const save = async (properties: Partial<ServiceResource["properties"]>): Promise<void> => {
    setError(undefined);
    setSaved(false);
    const data = service.data;
    if (!data) return;
    try {
      await putServiceProperties(api, servicePath, data.etag, properties);
      setSaved(true);
      setVersion((v) => v + 1);
    } catch (e) {
      setError(e as Error);
    }
  };
  return {
    service,
    /** The failure of the read or of the last save. */
    error: service.error ?? error,
    saved,
    /** An edit since the last save: "Saved." no longer holds. */
    changed: () => setSaved(false),
    save,
  };
}
