// `provisio registration …`: a device's registration as the service API keeps it. `attempts`
// shows its last register calls step by step (issue 22, "every registration explained").
import type { Command } from "commander";
import type { RegistrationAttempt } from "../domain/attempt.js";
import { computeDeviceKey, deleteRecord } from "./enrollment-commands.js";
import { DpsSession, type Opts, print, required, serverOptions, str } from "./server-options.js";

const API = "api-version=2021-10-01";
const seg = encodeURIComponent;

/** An attempt as a person reads it: the ending, then each step with its time and finding. */
export function formatAttempt(a: RegistrationAttempt): string {
  const how = [a.protocol && `over ${a.protocol}`, `from ${a.sourceAddress}`].filter(Boolean).join(" ");
  const code = a.errorCode === undefined ? "" : ` ${a.errorCode}`;
  const lines = [`${a.at}  ${a.outcome}${code} ${how} (${a.durationMs} ms)`];
  if (a.message) lines.push(`  ${a.message}`);
  const width = Math.max(...a.steps.map((s) => s.step.length));
  for (const s of a.steps) {
    const mark = s.outcome === "passed" ? "ok  " : "FAIL";
    lines.push(`  ${mark} ${s.step.padEnd(width)} ${`${s.durationMs} ms`.padStart(9)}  ${s.detail ?? ""}`.trimEnd());
  }
  return lines.join("\n");
}

export function registerRegistrationCommands(program: Command): void {
  const group = program
    .command("registration")
    .description("Devices' registration records (like az iot dps registration)");
  const data = (cmd: Command, right: string) => serverOptions(cmd, right).option("--dps-name <name>", "the instance");
  const rid = (cmd: Command) => cmd.option("--rid, --registration-id <id>", "the device's registration id");

  data(
    group.command("list").description("List the registration records of an enrollment group"),
    "RegistrationStatusRead",
  )
    .option("--gid, --group-id <id>", "the enrollment group")
    .option("--top <n>", "at most this many (default: all, paged)")
    .action(async (o: Opts) => {
      const gid = required(o, "groupId", "--group-id (--gid)");
      const top = str(o, "top");
      const client = await new DpsSession(o).dataPlane("RegistrationStatusRead");
      print(await client.query(`/registrations/${seg(gid)}/query?${API}`, top ? Number(top) : undefined), o);
    });

  rid(data(group.command("show").description("Show a device's registration record"), "RegistrationStatusRead")).action(
    async (o: Opts) => {
      const id = required(o, "registrationId", "--registration-id (--rid)");
      const client = await new DpsSession(o).dataPlane("RegistrationStatusRead");
      print(await client.call("GET", `/registrations/${seg(id)}?${API}`), o);
    },
  );

  rid(data(group.command("delete").description("Delete a device's registration record"), "RegistrationStatusWrite"))
    .option("-e, --etag <etag>", "delete only if unchanged since this etag")
    .option("--deprovision", "also remove the device from the hub it was assigned to")
    .action(async (o: Opts) => deleteRecord(o, required(o, "registrationId", "--registration-id (--rid)")));

  rid(
    data(
      group
        .command("attempts")
        .description("Show a device's last register calls step by step: why it was assigned, failed or refused"),
      "RegistrationStatusRead",
    ),
  ).action(async (o: Opts) => {
    const id = required(o, "registrationId", "--registration-id (--rid)");
    const client = await new DpsSession(o).dataPlane("RegistrationStatusRead");
    const attempts = (await client.call("GET", `/registrations/${seg(id)}/attempts?${API}`)) as RegistrationAttempt[];
    if (str(o, "output") === "table") process.stdout.write(`${attempts.map(formatAttempt).join("\n\n")}\n`);
    else print(attempts, o);
  });

  // The old name az keeps hidden: `az iot dps compute-device-key`.
  serverOptions(program.command("compute-device-key"), "EnrollmentRead")
    .description("Derive a device's key from its symmetric-key group's key")
    .option("--dps-name <name>", "the instance")
    .option("--key, --symmetric-key <key>", "the group key (instead of reading it from the service)")
    .option("--gid, --group-id <id>", "the enrollment group whose key to read")
    .option("--rid, --registration-id <id>", "the device's registration id")
    .action(async (o: Opts) => print(await computeDeviceKey(o), o));
}
