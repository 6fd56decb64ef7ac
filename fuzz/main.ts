/**
 * `npm run fuzz`: sends generated and mutated requests to a real server (a
 * child process) and prints the report. Exits 1 when a rule was broken, 2
 * on bad flags. `--seed N --count M` reproduces a run; `--only I` sends
 * request I of the seed alone.
 */
import { isMainModule } from "../runtime/main-module.js";
import { helpText, type OptionSpec, OptionError, parseOptions } from "../runtime/options.js";
import { formatFuzzReport, fuzzViolations } from "./format-report.js";
import { runFuzz } from "./run-fuzz.js";

const OPTIONS: readonly OptionSpec[] = [
  { flag: "seed", kind: "int", help: "Seed of the generated requests (default: random, printed)." },
  { flag: "count", short: "n", kind: "int", default: "10000", help: "Requests to send." },
  { flag: "concurrency", short: "c", kind: "int", default: "8", help: "Requests in flight at once." },
  { flag: "only", kind: "int", help: "Send only request number I of the seed (to reproduce a failure)." },
  { flag: "from", kind: "int", default: "0", help: "Start at request number I (with --count as the end and -c 1: replays a pair that shared a connection)." },
  { flag: "settle", kind: "duration", default: "15s", help: "Longest wait for the server's memory to settle after the run." },
];

const HELP = helpText(
  "npm run fuzz -- [options]",
  "Starts a private Redis, a stepq server (child process) and an echo worker, submits canary jobs, then sends\n" +
    "generated and mutated requests over every RPC (Connect JSON/binary/GET/streaming, gRPC, gRPC-Web; HTTP/1.1,\n" +
    "h2c and raw sockets). Exits 1 on any internal/unknown answer, unanswered request, crash, failed /healthz\n" +
    "probe, memory left high, or changed canary.",
  OPTIONS,
);

export async function runFuzzCommand(argv: readonly string[]): Promise<number> {
  let seed: number;
  let count: number;
  let concurrency: number;
  let only: number | undefined;
  let from: number;
  let settleMs: number;
  try {
    const { values: v, help, positionals } = parseOptions(OPTIONS, argv, {});
    if (help) {
      process.stdout.write(HELP);
      return 0;
    }
    if (positionals.length > 0) throw new OptionError(`unexpected argument '${positionals[0]}'; see --help`);
    seed = (v.seed as number | undefined) ?? Math.floor(Math.random() * 2 ** 31);
    count = v.count as number;
    concurrency = v.concurrency as number;
    only = v.only as number | undefined;
    from = v.from as number;
    settleMs = v.settle as number;
    if (count < 1) throw new OptionError("--count must be at least 1");
    if (from < 0 || from >= count) throw new OptionError(`--from must be 0 or more and below --count (${count})`);
    if (concurrency < 1) throw new OptionError("--concurrency must be at least 1");
  } catch (e) {
    if (!(e instanceof OptionError)) throw e;
    process.stderr.write(`fuzz: ${e.message}\n`);
    return 2;
  }
  process.stderr.write(`fuzz: seed ${seed} (reproduce with: npm run fuzz -- --seed ${seed} --count ${count})\n`);
  const report = await runFuzz({ seed, count, from, concurrency, settleMs, ...(only !== undefined ? { only } : {}), log: (line) => process.stderr.write(`fuzz: ${line}\n`) });
  process.stdout.write(formatFuzzReport(report));
  return fuzzViolations(report).length === 0 ? 0 : 1;
}

if (isMainModule(import.meta.url)) {
  runFuzzCommand(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`fuzz: ${(e as Error).stack ?? String(e)}\n`);
      process.exit(1);
    },
  );
}
