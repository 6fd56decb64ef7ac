#!/usr/bin/env node
// Compiles stepq to JavaScript in dist/ (or the folder given as the first
// argument) and copies the Lua scripts next to the compiled queue layer,
// which loads them at run time. Usage: node scripts/build.mjs [outDir]
import { execFileSync } from "node:child_process";
import { cpSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const out = resolve(root, process.argv[2] ?? "dist");
rmSync(out, { recursive: true, force: true });
execFileSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", join(root, "tsconfig.build.json"), "--outDir", out], {
  stdio: "inherit",
});
cpSync(join(root, "queue/scripts"), join(out, "queue/scripts"), { recursive: true, filter: (p) => !p.endsWith(".ts") });
console.log(`built ${out}`);
