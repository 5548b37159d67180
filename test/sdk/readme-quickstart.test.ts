// The README's quickstart, run as written against a real `provisio serve`: the README stays true.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { hubOf } from "../support/hub-clients.js";
import { call } from "../support/management.js";
import { newDataDir, type ProvisioProcess, startProvisio } from "../support/provisio-process.js";

const run = promisify(execFile);
const root = join(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "../../..");

let p: ProvisioProcess;
let work: string;
before(async () => {
  work = newDataDir();
  p = await startProvisio({ dataDir: join(work, "provisio-data") });
});
after(async () => {
  await p.dispose();
});

test("the README quickstart enrolls, provisions and sends telemetry with the real SDKs", async () => {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## Quickstart"));
  const code = /```js\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(code, "the quickstart has a js block");
  mkdirSync(work, { recursive: true });
  symlinkSync(join(root, "node_modules"), join(work, "node_modules"));
  writeFileSync(join(work, "quickstart.mjs"), code);
  const { stdout } = await run(process.execPath, ["quickstart.mjs"], { cwd: work, timeout: 60_000 });
  assert.match(stdout, /assigned to hub-1\.localhost as my-first-device/);
  const kept = await call(p, "GET", "/_provisio/messages?deviceId=my-first-device", {
    connectionString: hubOf(p).connectionString,
  });
  assert.deepEqual(
    (kept.json() as { payload: unknown }[]).map((m) => m.payload),
    [{ temperature: 21.5 }],
  );
});
