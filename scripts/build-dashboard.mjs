// Bundles the dashboard (dashboard/, Preact and uPlot) into <out>/dashboard: app-<hash>.js,
// app-<hash>.css and index.html naming them, so the assets can be cached for good and the page never
// (server/dashboard-files.ts serves them). esbuild, as for the browser client (docs/architecture.md).
import { build } from "esbuild";
import { writeFileSync } from "node:fs";
import { basename, join } from "node:path";

export async function buildDashboard(root, out) {
  const dir = join(out, "dashboard");
  const result = await build({
    entryPoints: [join(root, "dashboard/main.tsx")],
    outdir: dir,
    entryNames: "app-[hash]",
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    jsx: "automatic",
    jsxImportSource: "preact",
    minify: true,
    metafile: true,
    logLevel: "error",
  });
  const files = Object.keys(result.metafile.outputs).map((p) => basename(p));
  const js = files.find((f) => f.endsWith(".js"));
  const css = files.find((f) => f.endsWith(".css"));
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>stepq</title>
<link rel="stylesheet" href="/${css}">
</head>
<body>
<div id="app"></div>
<script type="module" src="/${js}"></script>
</body>
</html>
`;
  writeFileSync(join(dir, "index.html"), html);
  const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
  console.log(`built ${dir} (${(bytes / 1024).toFixed(1)} KiB)`);
  return { dir, bytes };
}
