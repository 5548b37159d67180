// `provisio policy …`: az iot dps policy (management.md §7.3) as read-modify-write of the
// instance's policies. They go back with their keys (listkeys): a policy sent without keys gets
// new ones, which is how a key is regenerated on purpose.
import type { Command } from "commander";
import { parseRights } from "../domain/instance.js";
import { listKeys, type PolicyWire, putProperties, readInstance } from "./instance-resource.js";
import { managementOptions as common, DpsSession, type Opts, print, required, str } from "./server-options.js";

/** `--rights EnrollmentRead EnrollmentWrite` or comma separated, checked. */
function rightsOf(value: string[] | string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const text = (Array.isArray(value) ? value : [value]).join(",");
  const rights = parseRights(text.replace(/\s+/g, ","));
  if (!rights) {
    throw new Error(
      "--rights takes ServiceConfig, EnrollmentRead, EnrollmentWrite, RegistrationStatusRead, RegistrationStatusWrite or DeviceConnect.",
    );
  }
  return rights.join(", ");
}

function findPolicy(policies: PolicyWire[], name: string): PolicyWire {
  const p = policies.find((x) => x.keyName.toLowerCase() === name.toLowerCase());
  if (!p) throw new Error(`No access policy '${name}'; there are: ${policies.map((x) => x.keyName).join(", ")}.`);
  return p;
}

export function registerPolicyCommands(program: Command): void {
  const group = program.command("policy").description("Shared access policies (like az iot dps policy)");
  const named = (cmd: Command) => cmd.option("--pn, --policy-name <name>", "the policy's name");

  named(common(group.command("create").description("Add a shared access policy; keys are generated unless given")))
    .option(
      "-r, --rights <rights...>",
      "ServiceConfig EnrollmentRead EnrollmentWrite RegistrationStatusRead RegistrationStatusWrite",
    )
    .option("--primary-key <key>", "base64, at least 16 bytes (default: generated)")
    .option("--secondary-key <key>", "base64, at least 16 bytes (default: generated)")
    .action(async (o: Opts) => {
      const session = new DpsSession(o);
      const name = required(o, "policyName", "--policy-name (--pn)");
      const rights = rightsOf(o.rights as string[] | undefined);
      if (!rights) throw new Error("--rights is required.");
      const { path, resource } = await readInstance(session);
      const policies = await listKeys(session, path);
      if (policies.some((p) => p.keyName.toLowerCase() === name.toLowerCase())) {
        throw new Error(`Access policy '${name}' exists; change it with 'provisio policy update'.`);
      }
      const added = {
        keyName: name,
        rights,
        primaryKey: str(o, "primaryKey") ?? null,
        secondaryKey: str(o, "secondaryKey") ?? null,
      };
      await putProperties(session, path, resource.etag, { authorizationPolicies: [...policies, added] });
      print(findPolicy(await listKeys(session, path), name), o);
    });

  common(group.command("list").description("List the shared access policies with their keys")).action(
    async (o: Opts) => {
      const session = new DpsSession(o);
      print(await listKeys(session, await session.instancePath()), o);
    },
  );

  named(common(group.command("show").description("Show a shared access policy with its keys"))).action(
    async (o: Opts) => {
      const session = new DpsSession(o);
      const policies = await listKeys(session, await session.instancePath());
      print(findPolicy(policies, required(o, "policyName", "--policy-name (--pn)")), o);
    },
  );

  named(common(group.command("update").description("Change a policy's rights or keys ('' regenerates a key)")))
    .option("-r, --rights <rights...>", "the new rights")
    .option("--primary-key <key>", "a new primary key; '' generates one")
    .option("--secondary-key <key>", "a new secondary key; '' generates one")
    .action(async (o: Opts) => {
      const session = new DpsSession(o);
      const name = required(o, "policyName", "--policy-name (--pn)");
      const rights = rightsOf(o.rights as string[] | undefined);
      const pk = o.primaryKey as string | undefined;
      const sk = o.secondaryKey as string | undefined;
      if (!rights && pk === undefined && sk === undefined) {
        throw new Error("Nothing to change: give --rights, --primary-key or --secondary-key.");
      }
      const { path, resource } = await readInstance(session);
      const policies = await listKeys(session, path);
      const target = findPolicy(policies, name);
      const changed = policies.map((p) =>
        p === target
          ? {
              ...p,
              ...(rights ? { rights } : {}),
              // An empty key asks the server for a new one (management.md §1.4).
              ...(pk !== undefined ? { primaryKey: pk === "" ? null : pk } : {}),
              ...(sk !== undefined ? { secondaryKey: sk === "" ? null : sk } : {}),
            }
          : p,
      );
      await putProperties(session, path, resource.etag, { authorizationPolicies: changed });
      print(findPolicy(await listKeys(session, path), name), o);
    });

  named(common(group.command("delete").description("Remove a shared access policy"))).action(async (o: Opts) => {
    const session = new DpsSession(o);
    const name = required(o, "policyName", "--policy-name (--pn)");
    const { path, resource } = await readInstance(session);
    const policies = await listKeys(session, path);
    const target = findPolicy(policies, name);
    if (target.keyName.toLowerCase() === session.client.target.credentials.keyName.toLowerCase()) {
      throw new Error(`'${target.keyName}' is the policy this command signs with; delete it with another one.`);
    }
    await putProperties(session, path, resource.etag, {
      authorizationPolicies: policies.filter((p) => p !== target),
    });
  });
}
