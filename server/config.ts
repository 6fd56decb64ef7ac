/**
 * The server's settings: flags, environment variables and defaults that
 * work on a laptop (`stepq serve --help` prints this table).
 */
import type { SubmitLimits } from "../queue/limits.js";
import { helpText, type OptionSpec, parseOptions } from "../queue/options.js";

export const SERVER_OPTIONS: readonly OptionSpec[] = [
  { flag: "redis-url", env: "REDIS_URL", kind: "string", default: "redis://127.0.0.1:6379", help: "Redis to use." },
  { flag: "port", short: "p", env: "STEPQ_PORT", kind: "int", default: "8080", help: "TCP port for Connect, gRPC and gRPC-Web (0: any free port)." },
  { flag: "host", env: "STEPQ_HOST", kind: "string", default: "127.0.0.1", help: "Address to listen on; 0.0.0.0 for every interface." },
  { flag: "queue", env: "STEPQ_QUEUE", kind: "string", default: "default", help: "Queue name (all its keys share the hash tag {name})." },
  { flag: "retention", env: "STEPQ_RETENTION", kind: "duration", default: "24h", help: "How long finished jobs, their output and logs are kept." },
  { flag: "max-queued-per-route", env: "STEPQ_MAX_QUEUED_PER_ROUTE", kind: "int", default: "0", help: "Most queued steps per route; submits beyond get RESOURCE_EXHAUSTED (0: no limit)." },
  { flag: "max-steps-per-job", env: "STEPQ_MAX_STEPS_PER_JOB", kind: "int", default: "100", help: "Most steps in one job." },
  { flag: "max-operation-bytes", env: "STEPQ_MAX_OPERATION_BYTES", kind: "bytes", default: "1MiB", help: "Largest encoded operation of one step." },
  { flag: "max-request-bytes", env: "STEPQ_MAX_REQUEST_BYTES", kind: "bytes", default: "8MiB", help: "Largest request message." },
  { flag: "max-tokens-limit", env: "STEPQ_MAX_TOKENS_LIMIT", kind: "int", default: "32768", help: "Highest max_tokens an infer step may ask for." },
  { flag: "events-max-len", env: "STEPQ_EVENTS_MAX_LEN", kind: "int", default: "100000", help: "Approximate cap of the queue-wide events stream." },
  { flag: "sweep-interval", env: "STEPQ_SWEEP_INTERVAL", kind: "duration", default: "1s", help: "How often this process recovers expired leases and deletes expired jobs." },
  { flag: "shutdown-grace", env: "STEPQ_SHUTDOWN_GRACE", kind: "duration", default: "10s", help: "How long requests in flight may finish on SIGINT/SIGTERM." },
];

export interface ServerConfig {
  redisUrl: string;
  port: number;
  host: string;
  queue: string;
  limits: Partial<SubmitLimits>;
  maxRequestBytes: number;
  eventsMaxLen: number;
  sweepIntervalMs: number;
  shutdownGraceMs: number;
}

/** The configuration from `argv` and the environment. */
export function serverConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): ServerConfig & { help: boolean } {
  const { values: v, help } = parseOptions(SERVER_OPTIONS, argv, env);
  return {
    help,
    redisUrl: v["redis-url"] as string,
    port: v.port as number,
    host: v.host as string,
    queue: v.queue as string,
    limits: {
      retentionMs: v.retention as number,
      maxQueuedPerRoute: v["max-queued-per-route"] as number,
      maxStepsPerJob: v["max-steps-per-job"] as number,
      maxOperationBytes: v["max-operation-bytes"] as number,
      maxTokensLimit: v["max-tokens-limit"] as number,
    },
    maxRequestBytes: v["max-request-bytes"] as number,
    eventsMaxLen: v["events-max-len"] as number,
    sweepIntervalMs: v["sweep-interval"] as number,
    shutdownGraceMs: v["shutdown-grace"] as number,
  };
}

export const SERVER_HELP = helpText(
  "stepq serve [options]",
  "Runs the stepq API server: StepService and JobService over Connect, gRPC and gRPC-Web on one port\n" +
    "(HTTP/1.1 and HTTP/2 cleartext), plus GET /healthz (503 while Redis is unreachable).",
  SERVER_OPTIONS,
);
