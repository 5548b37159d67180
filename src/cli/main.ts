// The `provisio` command: the verbs of program.ts, a refusal printed with what to do about it.
import { buildProgram } from "./program.js";
import { explain } from "./server-options.js";

buildProgram()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    process.stderr.write(`provisio: ${explain(err)}\n`);
    process.exit(1);
  });
