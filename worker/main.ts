/**
 * `stepq worker` / `node dist/worker/main.js`: a worker from flags and
 * environment (see `--help`), running until SIGINT/SIGTERM.
 */
import { isMainModule } from "../runtime/main-module.js";
import { OptionError } from "../runtime/options.js";
import { startTracing } from "../runtime/tracing.js";
import { WORKER_HELP, workerConfig } from "./config.js";
import { buildEngines } from "./engines/index.js";
import { createLogger } from "../runtime/logger.js";
import { createWorkerMetrics, listenForMetrics, type MetricsListener } from "./metrics.js";
import { createWorker } from "./worker.js";

/** Runs a worker from `argv`; resolves with the exit code. */
export async function runWorkerCommand(argv: readonly string[]): Promise<number> {
  let config;
  let engines;
  try {
    config = workerConfig(argv);
    if (config.help) {
      process.stdout.write(WORKER_HELP);
      return 0;
    }
    engines = await buildEngines(config.engines, config);
  } catch (e) {
    if (e instanceof OptionError) {
      process.stderr.write(`stepq worker: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const tracing = await startTracing("stepq-worker");
  const worker = createWorker({ ...config, engines });
  let signals = 0;
  const onSignal = () => {
    signals++;
    if (signals === 1) void worker.stop();
    else process.exit(130); // a second Ctrl-C: leave now; leases expire and steps are requeued
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  let metrics: MetricsListener | undefined;
  if (config.metricsPort > 0) {
    const log = createLogger("worker.metrics");
    metrics = await listenForMetrics(createWorkerMetrics(worker), config.metricsPort, config.metricsHost, (err) => log.error("metrics collection failed", { error: err }));
    log.info("metrics listening", { url: `http://${config.metricsHost}:${metrics.port}/metrics` });
  }
  await worker.runForever();
  await worker.stop();
  await metrics?.close();
  await tracing?.shutdown();
  return 0;
}


if (isMainModule(import.meta.url)) {
  runWorkerCommand(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`stepq worker: ${(e as Error).stack ?? String(e)}\n`);
      process.exit(1);
    },
  );
}
