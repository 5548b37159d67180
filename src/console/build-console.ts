// Builds the web console (src/console/app) into dist/console-app with esbuild: one script, one
// stylesheet, one page. Run by `npm run build` (and so by `npm ci` and `npm test`); esbuild and
// Preact are build-time dependencies, nothing is fetched at run time.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const out = join(root, "dist", "console-app");
mkdirSync(out, { recursive: true });

await build({
  entryPoints: { app: join(root, "src/console/app/main.tsx") },
  outdir: out,
  bundle: true,
  minify: true,
  sourcemap: true,
  format: "esm",
  target: ["chrome109", "firefox115", "safari16"],
  jsx: "automatic",
  jsxImportSource: "preact",
  tsconfig: join(root, "src/console/app/tsconfig.json"),
  legalComments: "none",
  logLevel: "warning",
});

writeFileSync(
  join(out, "index.html"),
  `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Provisio</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/console/app.css">
<script type="module" src="/console/app.js"></script>
</head>
<body>
<div id="app"><p>Loading the Provisio console…</p></div>
<noscript>The Provisio console needs JavaScript. The service, device and management APIs work without it.</noscript>
</body>
</html>
`,
);
