// `provisio completion bash|zsh`: a completion script made from the command tree, so it always
// offers exactly the verbs and flags this version has. Bash first; zsh through bashcompinit.
import type { Command } from "commander";

/** Each command path ("" for the top) with the words that may follow it: subcommands, then flags. */
export function completionTable(program: Command): Map<string, string[]> {
  const table = new Map<string, string[]>();
  const walk = (cmd: Command, path: string[]): void => {
    const flags = cmd.options
      .filter((o) => !o.hidden)
      .flatMap((o) => [o.long, o.short].filter((f): f is string => !!f));
    const subs = cmd.commands.map((c) => c.name());
    table.set(path.join(" "), [...subs, ...flags, "--help"]);
    for (const sub of cmd.commands) walk(sub, [...path, sub.name()]);
  };
  walk(program, []);
  return table;
}

const quote = (s: string): string => `'${s.replace(/'/g, "'\\''")}'`;

export function bashCompletion(program: Command): string {
  const table = completionTable(program);
  const paths = [...table.keys()].filter((p) => p !== "");
  const cases = [...table.entries()].map(([path, words]) => `    ${quote(path)}) words=${quote(words.join(" "))} ;;`);
  return `# provisio completion for bash: source <(provisio completion bash)
_provisio() {
  local cur path w i words
  cur="\${COMP_WORDS[COMP_CWORD]}"
  path=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    [[ "$w" == -* ]] && continue
    case "\${path:+$path }$w" in
      ${paths.map(quote).join("|")}) path="\${path:+$path }$w" ;;
    esac
  done
  case "$path" in
${cases.join("\n")}
    *) words="" ;;
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _provisio provisio
`;
}

export function zshCompletion(program: Command): string {
  return `# provisio completion for zsh: source <(provisio completion zsh)
autoload -U +X bashcompinit && bashcompinit
${bashCompletion(program)}`;
}

export function registerCompletionCommand(program: Command): void {
  program
    .command("completion")
    .description("Print a shell completion script for provisio's verbs and flags")
    .argument("<shell>", "bash or zsh")
    .action((shell: string) => {
      const s = shell.toLowerCase();
      if (s !== "bash" && s !== "zsh") throw new Error(`'${shell}': completion is for bash or zsh.`);
      process.stdout.write(s === "bash" ? bashCompletion(program) : zshCompletion(program));
    });
}
