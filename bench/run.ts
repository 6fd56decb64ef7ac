/**
 * `npm run bench`: stepq against BullMQ on a private Redis, plus the same
 * run's raw ceilings. See docs/benchmarks.md for what each figure means.
 *
 *   node --import tsx bench/run.ts [--only submit,e2e,latency,memory,tokens,metrics,tracing,ceilings] [--rounds 3] [--scale 1] [--deep]
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startBenchRedis } from "./lib/bench-redis.js";
import { childNodeFlags, REPO_ROOT } from "./lib/child.js";
import type { BenchContext } from "./lib/context.js";
import { machineInfo, watchForeignLoad } from "./lib/machine.js";
import { formatTable, formatTargets, writeJson } from "./lib/report.js";
import { createResults } from "./lib/results.js";
import { checkTargets } from "./lib/targets.js";
import { runCeilings } from "./scenarios/ceilings.js";
import { runDeep } from "./scenarios/deep.js";
import { runE2e } from "./scenarios/e2e.js";
import { runLatency } from "./scenarios/latency.js";
import { runMemory } from "./scenarios/memory.js";
import { runMetrics } from "./scenarios/metrics.js";
import { runTracing } from "./scenarios/tracing.js";
import { runSubmit } from "./scenarios/submit.js";
import { runTokens } from "./scenarios/tokens.js";

const SCENARIOS: Record<string, (ctx: BenchContext) => Promise<void>> = {
  ceilings: runCeilings,
  submit: runSubmit,
  e2e: runE2e,
  latency: runLatency,
  memory: runMemory,
  tokens: runTokens,
  metrics: runMetrics,
  tracing: runTracing,
};

const HELP = `Usage: node --import tsx bench/run.ts [options]   (npm run bench -- [options])

Benchmarks stepq against BullMQ on a private redis-server (no persistence), alternating the two
systems for each figure, and prints medians with min–max, the stepq/BullMQ ratio, and the share
of the same run's ceilings. Raw figures go to bench/results/latest.json.

Options:
  --only <a,b>     Scenarios to run: ${Object.keys(SCENARIOS).join(", ")} (default: all)
  --rounds <n>     Rounds per figure, each system once per round (default 3)
  --scale <x>      Multiplies every step count, e.g. 0.1 for a quick run (default 1)
  --deep           Also run end to end (concurrency 16) and submit with 1,000,000 steps queued
                   (adds ~4 minutes)
  --profile <dir>  Write CPU profiles (--cpu-prof) of the stepq server and worker processes to <dir>
  --out <file>     JSON output (default bench/results/latest.json)
  -h, --help       Show this help.
`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      only: { type: "string" },
      rounds: { type: "string", default: "3" },
      scale: { type: "string", default: "1" },
      deep: { type: "boolean", default: false },
      profile: { type: "string" },
      out: { type: "string", default: join(REPO_ROOT, "bench", "results", "latest.json") },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const only = values.only ? values.only.split(",").map((s) => s.trim()) : Object.keys(SCENARIOS);
  const unknown = only.filter((s) => !(s in SCENARIOS));
  const rounds = Number(values.rounds);
  const scale = Number(values.scale);
  if (unknown.length > 0 || !Number.isInteger(rounds) || rounds < 1 || !(scale > 0)) {
    process.stderr.write(`bench: ${unknown.length > 0 ? `unknown scenario ${unknown.join(", ")}` : "bad --rounds or --scale"}; see --help\n`);
    return 2;
  }
  if (values.profile) childNodeFlags.push("--cpu-prof", `--cpu-prof-dir=${values.profile}`);

  const started = new Date();
  const foreignLoad = watchForeignLoad();
  const redis = await startBenchRedis();
  const results = createResults();
  const ctx: BenchContext = { redis, results, rounds, scale, log: (line) => process.stderr.write(`${line}\n`) };
  const t0 = performance.now();
  const seconds: Record<string, number> = {};
  try {
    for (const name of [...only, ...(values.deep ? ["deep"] : [])]) {
      const s0 = performance.now();
      await (name === "deep" ? runDeep : (SCENARIOS[name] as (ctx: BenchContext) => Promise<void>))(ctx);
      seconds[name] = Math.round((performance.now() - s0) / 1000);
    }
  } finally {
    await redis.stop();
  }
  const minutes = (performance.now() - t0) / 60_000;
  const foreign = foreignLoad();
  const { figures, ceilings, notes } = results.summary();
  const targets = checkTargets(figures);
  const machine = { ...machineInfo(), redis: redis.version, foreignCpuShare: foreign };
  const quiet = foreign === undefined ? "" : `; other processes used ${(foreign * 100).toFixed(0)}% of the CPU meanwhile`;
  process.stdout.write(
    `\nstepq vs BullMQ, ${started.toISOString()}, ${machine.cores} × ${machine.cpu}, Node ${machine.node}, Redis ${machine.redis}\n` +
      `${rounds} round(s), scale ${scale}, ${minutes.toFixed(1)} min${quiet}\n\n${formatTable(figures, ceilings, notes)}\n\n${formatTargets(targets)}\n`,
  );
  writeJson(values.out, { date: started.toISOString(), machine, options: { only, rounds, scale, deep: values.deep }, minutes, seconds, ceilings, figures, targets, notes });
  process.stdout.write(`\nraw figures: ${values.out}\n`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`bench: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
