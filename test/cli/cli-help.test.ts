// Every verb's --help ends with examples, and `provisio completion bash` completes the verbs and
// flags of this version (sourced into a real bash).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import type { Command } from "commander";
import { buildProgram } from "../../src/cli/program.js";
import { runProvisio } from "../support/run-cli.js";

function leaves(cmd: Command, path: string[] = []): { path: string; cmd: Command }[] {
  return cmd.commands.flatMap((c) => {
    const p = [...path, c.name()];
    return c.commands.length === 0 ? [{ path: p.join(" "), cmd: c }] : leaves(c, p);
  });
}

test("every verb's help has examples that name the verb", () => {
  const all = leaves(buildProgram());
  assert.ok(all.length > 50, `only ${all.length} verbs`);
  for (const { path, cmd } of all) {
    let help = "";
    cmd.configureOutput({ writeOut: (s) => (help += s), writeErr: (s) => (help += s) });
    cmd.outputHelp();
    assert.match(help, /\nExamples:\n/, `provisio ${path} --help has no examples`);
    if (path !== "completion")
      assert.ok(
        help.includes(`$ provisio ${path}`) || help.includes(`provisio ${path} `),
        `${path}: an example of another verb`,
      );
  }
});

test("provisio completion bash completes verbs and flags; zsh wraps it", async () => {
  const bash = await runProvisio(["completion", "bash"]);
  assert.equal(bash.code, 0, bash.stderr);
  const complete = (words: string[]): string[] => {
    const script = `${bash.stdout}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _provisio; printf '%s\\n' "\${COMPREPLY[@]}"`;
    const r = spawnSync("bash", ["-c", script], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.split("\n").filter(Boolean);
  };
  assert.deepEqual(complete(["provisio", "enrollment-gr"]), ["enrollment-group"]);
  assert.deepEqual(complete(["provisio", "enrollment-group", "registration", "l"]), ["list"]);
  assert.ok(
    complete(["provisio", "enrollment", "create", "--eid", "x", "--allocation"]).includes("--allocation-policy"),
  );
  assert.ok(complete(["provisio", "device", "simulate", "--"]).includes("--send-message"));
  const zsh = await runProvisio(["completion", "zsh"]);
  assert.match(zsh.stdout, /bashcompinit/);
  const fish = await runProvisio(["completion", "fish"]);
  assert.equal(fish.code, 1);
  assert.match(fish.stderr, /bash or zsh/);
});
