/**
 * `npm run chaos`: the chaos run from the command line (see docs/chaos.md).
 * Prints the report table; exits 1 when any "must be 0" row is not (a lost
 * job, a double completion...), 2 on bad flags.
 */
import { isMainModule } from "../runtime/main-module.js";
import { helpText, type OptionSpec, OptionError, parseOptions } from "../runtime/options.js";
import { chaosViolations, formatChaosReport, runChaos } from "./chaos/run-chaos.js";

const OPTIONS: readonly OptionSpec[] = [
  { flag: "jobs", short: "n", kind: "int", default: "5000", help: "Jobs to submit." },
  { flag: "workers", short: "w", kind: "int", default: "4", help: "Worker processes." },
  { flag: "concurrency", short: "c", kind: "int", default: "8", help: "Steps each worker runs at once." },
  { flag: "seed", kind: "int", default: "1", help: "Seed of the job mix, the kills and the dropped connections." },
  { flag: "duration", kind: "duration", help: "How long submissions (and the kills) last (default: 50 jobs/s, at least 10s)." },
  { flag: "kill-every", kind: "duration", default: "3s", help: "Mean time between two worker SIGKILLs." },
  { flag: "lease", kind: "duration", default: "2s", help: "Worker lease: how soon a killed worker's steps are recovered." },
  { flag: "no-redis-kill", kind: "bool", help: "Do not SIGKILL Redis halfway through." },
  { flag: "keep", kind: "bool", help: "Keep process logs and Redis data even when the run passes." },
];

const HELP = helpText(
  "npm run chaos -- [options]",
  "Starts a private Redis (AOF, appendfsync always), a server and worker processes, submits jobs (echo\n" +
    "steps and small DAGs with random durations and designed failures) while SIGKILLing workers, SIGKILLing\n" +
    "Redis once and dropping client streams, then audits every job. Exits 1 if any 'must be 0' row is not.",
  OPTIONS,
);

function positive(flag: string, value: unknown, min = 1): number {
  if (typeof value !== "number" || value < min) throw new OptionError(`--${flag} must be at least ${min} (got ${String(value)})`);
  return value;
}

/** Runs the CLI; resolves with the exit code. */
export async function runChaosCommand(argv: readonly string[]): Promise<number> {
  let options;
  try {
    const { values: v, help, positionals } = parseOptions(OPTIONS, argv, {});
    if (help) {
      process.stdout.write(HELP);
      return 0;
    }
    if (positionals.length > 0) throw new OptionError(`unexpected argument '${positionals[0]}'; see --help`);
    options = {
      jobs: positive("jobs", v.jobs),
      workers: positive("workers", v.workers),
      concurrency: positive("concurrency", v.concurrency),
      seed: v.seed as number,
      durationHintMs: v.duration === undefined ? undefined : positive("duration", v.duration, 1000),
      killEveryMs: positive("kill-every", v["kill-every"], 100),
      leaseMs: positive("lease", v.lease, 300),
      redisKill: v["no-redis-kill"] !== true,
      keepDir: v.keep === true,
    };
  } catch (e) {
    if (!(e instanceof OptionError)) throw e;
    process.stderr.write(`chaos: ${e.message}\n`);
    return 2;
  }
  const report = await runChaos({ ...options, log: (line) => process.stderr.write(`chaos: ${line}\n`) });
  process.stdout.write(formatChaosReport(report));
  return chaosViolations(report).length === 0 ? 0 : 1;
}

if (isMainModule(import.meta.url)) {
  runChaosCommand(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`chaos: ${(e as Error).stack ?? String(e)}\n`);
      process.exit(1);
    },
  );
}
