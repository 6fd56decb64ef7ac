/**
 * Summarises V8 CPU profiles (`node --cpu-prof`, or `bench/run.ts --profile
 * DIR`): the functions with the most self time, and the files, so a profile
 * can be read without a browser.
 *
 *   node --import tsx bench/profile-summary.ts [--top 25] FILE.cpuprofile...
 */
import { readFileSync } from "node:fs";
import { relative } from "node:path";
import { parseArgs } from "node:util";
import { REPO_ROOT } from "./lib/child.js";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Self time in ms per key, from one profile. */
function selfTimes(p: Profile, keyOf: (n: ProfileNode) => string): Map<string, number> {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const out = new Map<string, number>();
  p.samples.forEach((id, i) => {
    const node = byId.get(id);
    if (!node) return;
    const k = keyOf(node);
    out.set(k, (out.get(k) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000);
  });
  return out;
}

function where(url: string): string {
  if (url === "") return "(native)";
  const path = url.replace(/^file:\/\//, "");
  return path.startsWith(REPO_ROOT) ? relative(REPO_ROOT, path) : path.replace(/.*node_modules\//, "~/");
}

function print(title: string, times: Map<string, number>, total: number, top: number): void {
  process.stdout.write(`  ${title}\n`);
  for (const [k, ms] of [...times].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`    ${((ms / total) * 100).toFixed(1).padStart(5)}%  ${ms.toFixed(0).padStart(7)} ms  ${k}\n`);
  }
}

const { values, positionals } = parseArgs({ options: { top: { type: "string", default: "25" } }, allowPositionals: true });
if (positionals.length === 0) {
  process.stderr.write("usage: profile-summary.ts [--top N] FILE.cpuprofile...\n");
  process.exit(2);
}
for (const file of positionals) {
  const p = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const total = (p.endTime - p.startTime) / 1000;
  const fns = selfTimes(p, (n) => `${n.callFrame.functionName || "(anonymous)"}  ${where(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`);
  const idle = [...fns].filter(([k]) => k.startsWith("(idle)")).reduce((a, [, ms]) => a + ms, 0);
  process.stdout.write(`${file}: ${total.toFixed(0)} ms profiled, ${((1 - idle / total) * 100).toFixed(0)}% busy\n`);
  print("self time by function", fns, total, Number(values.top));
  print("self time by file", selfTimes(p, (n) => where(n.callFrame.url)), total, 12);
}
