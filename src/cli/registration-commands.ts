// `provisio registration …`: a device's registration as the service API keeps it. `attempts`
// shows its last register calls step by step (issue 22, "every registration explained").
import type { Command } from "commander";
import type { RegistrationAttempt } from "../domain/attempt.js";
import { clientOf, type Opts, print, serverOptions, str } from "./server-options.js";

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
  const group = program.command("registration").description("A device's registration (like az iot dps registration)");
  serverOptions(
    group
      .command("attempts")
      .description("Show a device's last register calls step by step: why it was assigned, failed or refused"),
    "RegistrationStatusRead",
  )
    .option("--rid, --registration-id <id>", "the device's registration id")
    .option("--output <format>", "json or table", "json")
    .action(async (o: Opts) => {
      const id = str(o, "registrationId");
      if (!id) throw new Error("--registration-id (--rid) is required.");
      const attempts = (await clientOf(o).call(
        "GET",
        `/registrations/${encodeURIComponent(id)}/attempts?api-version=2021-10-01`,
      )) as RegistrationAttempt[];
      if (str(o, "output") === "table") process.stdout.write(`${attempts.map(formatAttempt).join("\n\n")}\n`);
      else print(attempts);
    });
}
