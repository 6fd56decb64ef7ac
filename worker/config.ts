/**
 * The worker's settings: flags, environment variables and defaults that
 * work on a laptop (`stepq worker --help` prints this table).
 */
import { parseMemoryMb } from "../runtime/memory-size.js";
import { helpText, type OptionSpec, parseOptions, REDIS_OPTIONS, redisCaOption } from "../runtime/options.js";

/** The llama engine's options: models, threads, and where generated models go. */
export function modelOptions(defaultModels: string): OptionSpec[] {
  return [
    {
      flag: "model",
      short: "m",
      env: "STEPQ_MODELS",
      kind: "list",
      default: defaultModels,
      help: "GGUF model(s) for the llama engine: path.gguf, name=path.gguf, or 'tiny' (built-in, random weights); a --model or --models-dir implies llama.",
    },
    { flag: "models-dir", env: "STEPQ_MODELS_DIR", kind: "string", help: "A folder whose every .gguf file the llama engine serves, each as infer:<file name> and embed:<file name>." },
    { flag: "threads", env: "STEPQ_THREADS", kind: "int", default: "0", help: "CPU threads per generation for llama (0: the engine's default)." },
    { flag: "data-dir", env: "STEPQ_DATA_DIR", kind: "string", default: ".stepq", help: "Folder for local data (Redis for stepq dev, generated models)." },
  ];
}

/** The openai engine's options: the OpenAI-compatible server it forwards steps to. */
function upstreamOptions(): OptionSpec[] {
  return [
    { flag: "upstream", env: "STEPQ_UPSTREAM", kind: "string", help: "An OpenAI-compatible server's base URL (e.g. http://gpu-1:8000/v1) for the openai engine." },
    { flag: "upstream-model", env: "STEPQ_UPSTREAM_MODELS", kind: "list", default: "", help: "Text models it serves as infer:<name>: name, or name=upstream-name." },
    { flag: "upstream-embed-model", env: "STEPQ_UPSTREAM_EMBED_MODELS", kind: "list", default: "", help: "Embedding models it serves as embed:<name>: name, or name=upstream-name." },
    { flag: "upstream-key-env", kind: "string", default: "OPENAI_API_KEY", help: "The environment variable holding the upstream's API key (keys never go in flags)." },
    { flag: "upstream-concurrency", env: "STEPQ_UPSTREAM_CONCURRENCY", kind: "int", default: "8", help: "Requests to the upstream at once." },
    { flag: "upstream-timeout", env: "STEPQ_UPSTREAM_TIMEOUT", kind: "duration", default: "120s", help: "How long one upstream request may take." },
  ];
}

export const WORKER_OPTIONS: readonly OptionSpec[] = [
  ...REDIS_OPTIONS,
  { flag: "engines", env: "STEPQ_ENGINES", kind: "list", default: "echo", help: "Engines to run: echo, llama, openai (a --model implies llama, an --upstream openai)." },
  ...modelOptions(""),
  ...upstreamOptions(),
  { flag: "concurrency", short: "c", env: "STEPQ_CONCURRENCY", kind: "int", default: "1", help: "Steps run at once." },
  { flag: "lease", env: "STEPQ_LEASE", kind: "duration", default: "30s", help: "Lease length; renewed every third of it. A crashed worker's steps are requeued after it." },
  { flag: "shutdown-grace", env: "STEPQ_SHUTDOWN_GRACE", kind: "duration", default: "30s", help: "On SIGINT/SIGTERM, how long running steps may finish before they are handed back." },
  {
    flag: "heartbeat",
    env: "STEPQ_HEARTBEAT",
    kind: "duration",
    default: "5s",
    help: "How often the worker renews its record in the worker registry (ListWorkers); a worker that stops renewing leaves the list after three of these.",
  },
  { flag: "worker-id", env: "STEPQ_WORKER_ID", kind: "string", help: "Worker id in events and logs (default <host>-<pid>-<random>); steps name it in only_workers / exclude_workers." },
  { flag: "tag", env: "STEPQ_TAGS", kind: "list", default: "", help: "Tags this worker has, key=value (e.g. gpu=a100,zone=eu): steps requiring tags go only to workers with all of them." },
  {
    flag: "memory",
    env: "STEPQ_MEMORY",
    kind: "string",
    help: "Memory this worker offers, e.g. 80g, 24576m or MiB as a number (default: the machine's RAM; give the GPU's for GPU engines); matched by min_memory_mb.",
  },
  { flag: "tenants", env: "STEPQ_TENANTS", kind: "list", default: "", help: "Claim only these tenants' steps (names): a machine dedicated to some customers." },
  { flag: "exclude-tenants", env: "STEPQ_EXCLUDE_TENANTS", kind: "list", default: "", help: "Never claim these tenants' steps (names)." },
  {
    flag: "metrics-port",
    env: "STEPQ_METRICS_PORT",
    kind: "int",
    default: "0",
    help: "Serve GET /metrics (Prometheus text format; docs/operations.md) on this port; 0: no metrics listener.",
  },
  { flag: "metrics-host", env: "STEPQ_METRICS_HOST", kind: "string", default: "127.0.0.1", help: "Address of the metrics listener; 0.0.0.0 for every interface." },
  { flag: "flush", env: "STEPQ_FLUSH", kind: "duration", default: "2ms", help: "Minimum time between two output appends of one step (token batching window)." },
  {
    flag: "prefetch",
    env: "STEPQ_PREFETCH",
    kind: "duration",
    default: "2ms",
    help: "Claim ahead: expected work per slot a worker may hold beyond what it runs (short steps only; handed back if the worker stays busy). 0 turns it off.",
  },
];

export interface WorkerConfig {
  help: boolean;
  redisUrl: string;
  redisCa?: string;
  queue: string;
  engines: string[];
  concurrency: number;
  leaseMs: number;
  shutdownGraceMs: number;
  heartbeatMs: number;
  workerId?: string;
  tags: string[];
  memoryMb?: number;
  tenants: string[];
  excludeTenants: string[];
  flushMs: number;
  prefetchMs: number;
  /** Port of the /metrics listener (--metrics-port; 0: none). */
  metricsPort: number;
  metricsHost: string;
  models: string[];
  modelsDir?: string;
  upstream?: { baseUrl: string; apiKey?: string; models: string[]; embedModels: string[]; concurrency: number; timeoutMs: number };
  threads: number;
  dataDir: string;
}

/** The configuration from `argv` and the environment. */
export function workerConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const { values: v, help } = parseOptions(WORKER_OPTIONS, argv, env);
  return {
    help,
    redisUrl: v["redis-url"] as string,
    redisCa: redisCaOption(v["redis-ca"] as string, v["redis-url"] as string),
    queue: v.queue as string,
    // A model implies the llama engine, an upstream the openai engine.
    engines: [...new Set([...(v.engines as string[]), ...((v.model as string[]).length > 0 || v["models-dir"] ? ["llama"] : []), ...(v.upstream ? ["openai"] : [])])],
    modelsDir: v["models-dir"] as string | undefined,
    upstream: v.upstream
      ? {
          baseUrl: v.upstream as string,
          apiKey: env[v["upstream-key-env"] as string],
          models: v["upstream-model"] as string[],
          embedModels: v["upstream-embed-model"] as string[],
          concurrency: v["upstream-concurrency"] as number,
          timeoutMs: v["upstream-timeout"] as number,
        }
      : undefined,
    models: v.model as string[],
    threads: v.threads as number,
    dataDir: v["data-dir"] as string,
    concurrency: v.concurrency as number,
    leaseMs: v.lease as number,
    shutdownGraceMs: v["shutdown-grace"] as number,
    heartbeatMs: v.heartbeat as number,
    workerId: v["worker-id"] as string | undefined,
    tags: v.tag as string[],
    memoryMb: v.memory === undefined ? undefined : parseMemoryMb(v.memory as string),
    tenants: v.tenants as string[],
    excludeTenants: v["exclude-tenants"] as string[],
    flushMs: v.flush as number,
    prefetchMs: v.prefetch as number,
    metricsPort: v["metrics-port"] as number,
    metricsHost: v["metrics-host"] as string,
  };
}

export const WORKER_HELP = helpText(
  "stepq worker [options]",
  "Runs a worker: claims steps of the routes its engines serve from Redis, runs them, and streams\n" +
    "their tokens and narration back. SIGINT/SIGTERM stop claiming, let running steps finish for the\n" +
    "grace period, then hand the rest back to the queue.",
  WORKER_OPTIONS,
);
