// The `provisio` command: the verbs of program.ts, a refusal printed with what to do about it.
import { buildProgram } from "./program.js";
import { explain } from "./server-options.js";
import { NotRunning } from "./status-command.js";

buildProgram()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    process.stderr.write(`provisio: ${explain(err)}\n`);
    // `status` exits 3 when no service runs (as service managers do); anything else 1.
    process.exit(err instanceof NotRunning ? err.exitCode : 1);
  });
