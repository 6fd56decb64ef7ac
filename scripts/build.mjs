#!/usr/bin/env node
// Compiles stepq to JavaScript in dist/ (or the folder given as the first
// argument), copies the Lua scripts next to the compiled queue layer, which
// loads them at run time, and bundles the browser parts: the web client
// (build-web.mjs) and the dashboard the server serves at / (build-dashboard.mjs).
// Usage: node scripts/build.mjs [outDir]
import { execFileSync } from "node:child_process";
import { cpSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { buildDashboard } from "./build-dashboard.mjs";
import { buildWeb } from "./build-web.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const out = resolve(root, process.argv[2] ?? "dist");
rmSync(out, { recursive: true, force: true });
execFileSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", join(root, "tsconfig.build.json"), "--outDir", out], {
  stdio: "inherit",
});
cpSync(join(root, "queue/scripts"), join(out, "queue/scripts"), { recursive: true, filter: (p) => !p.endsWith(".ts") });
await buildWeb(root, out);
await buildDashboard(root, out);
console.log(`built ${out}`);
