// `provisio apply -f FILE` and `provisio export`: declarative enrollments. A file (or folder) says
// what instances, linked hubs, policies, CA certificates, enrollment groups and enrollments should
// exist; apply makes the server match (creating and updating; deleting with --prune), --dry-run
// prints the plan only. export writes the server's state in the same format, so applying an
// export to an empty instance rebuilds it, and applying a file twice changes nothing the second time.
import { writeFileSync } from "node:fs";
import type { Command } from "commander";
import { stringify } from "yaml";
import { applyPlan } from "./fleet/apply-plan.js";
import { exportManifest, readInstanceState } from "./fleet/fleet-state.js";
import { loadManifest } from "./fleet/manifest.js";
import { type Change, formatPlan, planInstance } from "./fleet/plan.js";
import { DpsSession, type Opts, serverOptions, str } from "./server-options.js";

const RIGHTS = "ServiceConfig, EnrollmentRead and EnrollmentWrite";

export function registerFleetCommands(program: Command): void {
  serverOptions(
    program
      .command("apply")
      .description(
        "Make instances, linked hubs, policies, CA certificates and enrollments match a file (YAML or JSON)",
      ),
    RIGHTS,
    { shortLogin: false },
  )
    .option("-f, --file <path>", "a .yaml/.yml/.json file, or a folder of them")
    .option("--prune", "delete what the file does not list (per kind the file lists; never instances)")
    .option("--dry-run", "print the plan; change nothing")
    .action(async (o: Opts) => {
      const file = str(o, "file");
      if (!file) throw new Error("--file (-f) is required: the fleet file or folder ('provisio export' writes one).");
      const manifest = loadManifest(file);
      const signingPolicy = new DpsSession(o).client.target.credentials.keyName;
      const plans: {
        entry: (typeof manifest.provisioningServices)[number];
        state: Awaited<ReturnType<typeof readInstanceState>>;
        changes: Change[];
      }[] = [];
      for (const entry of manifest.provisioningServices) {
        const state = await readInstanceState(o, entry.name);
        plans.push({ entry, state, changes: planInstance(entry, state, { prune: o.prune === true, signingPolicy }) });
      }
      const all = plans.flatMap((p) => p.changes);
      const json = str(o, "output") === "json";
      if (o.dryRun === true || all.length === 0) {
        process.stdout.write(
          json
            ? `${JSON.stringify(
                all.map(({ desired, ...c }) => c),
                null,
                2,
              )}\n`
            : formatPlan(all),
        );
        return;
      }
      if (!json) process.stdout.write(formatPlan(all));
      const done: Change[] = [];
      for (const p of plans) {
        await applyPlan(o, p.entry, p.state, p.changes, (c) => {
          done.push(c);
          if (!json) process.stdout.write(`${c.action}d ${c.kind} ${c.id}\n`);
        });
      }
      if (json)
        process.stdout.write(
          `${JSON.stringify(
            done.map(({ desired, ...c }) => c),
            null,
            2,
          )}\n`,
        );
      else process.stdout.write(`Applied ${done.length} change${done.length === 1 ? "" : "s"}.\n`);
    });

  serverOptions(
    program.command("export").description("Write instances' state as a fleet file for 'provisio apply'"),
    RIGHTS,
    {
      shortLogin: false,
    },
  )
    .option("--dps-name <name>", "only this instance (default: every one the credentials may list)")
    .option("--include-secrets", "symmetric keys, policy keys and hub connection strings too")
    .option("-f, --file <path>", "write here instead of standard output")
    .action(async (o: Opts) => {
      const manifest = await exportManifest(o, o.includeSecrets === true);
      const text =
        str(o, "output") === "json" ? `${JSON.stringify(manifest, null, 2)}\n` : stringify(manifest, { lineWidth: 0 });
      const file = str(o, "file");
      if (file) writeFileSync(file, text, { mode: o.includeSecrets === true ? 0o600 : 0o644 });
      else process.stdout.write(text);
    });
}
