// Bundles the browser client (clients/web) into <out>/web/stepq-web.js: one ES
// module for browsers, minified, with a source map. esbuild is the bundler (it
// bundles this in well under a second; docs/architecture.md). Platform
// "browser" makes any Node built-in a build error, so nothing Node-only can
// slip into the client.
import { build } from "esbuild";
import { join } from "node:path";

/** Bundles `clients/web/index.ts` of `root` (or `entry`) for browsers; returns the bundle's path and size. */
export async function buildWeb(root, out, entry = join(root, "clients/web/index.ts")) {
  const outfile = join(out, "web/stepq-web.js");
  const result = await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: true,
    sourcemap: true,
    metafile: true,
    logLevel: "error",
  });
  const nodeOnly = Object.keys(result.metafile.inputs).filter((p) => p.startsWith("node:") || p.includes("connect-node"));
  if (nodeOnly.length > 0) throw new Error(`the browser client would need Node-only modules: ${nodeOnly.join(", ")}`);
  const bytes = result.metafile.outputs[Object.keys(result.metafile.outputs).find((k) => k.endsWith("stepq-web.js"))].bytes;
  console.log(`built ${outfile} (${(bytes / 1024).toFixed(1)} KiB)`);
  return { outfile, bytes };
}
