/**
 * The server's settings: flags, environment variables and defaults that
 * work on a laptop (`stepq serve --help` prints this table).
 */
import type { LimitOverrides, OperationDefaults } from "../queue/limits.js";
import { readFileSync } from "node:fs";
import { checkCorsOrigins } from "./cors.js";
import type { ConnectionLimits, TlsFiles } from "./listen.js";
import { helpText, type OptionSpec, OptionError, parseDuration, parseOptions, REDIS_OPTIONS, redisCaOption } from "../runtime/options.js";

export const SERVER_OPTIONS: readonly OptionSpec[] = [
  ...REDIS_OPTIONS,
  { flag: "port", short: "p", env: "STEPQ_PORT", kind: "int", default: "8080", help: "TCP port for Connect, gRPC and gRPC-Web (0: any free port)." },
  { flag: "host", env: "STEPQ_HOST", kind: "string", default: "127.0.0.1", help: "Address to listen on; 0.0.0.0 for every interface." },
  {
    flag: "auth",
    env: "STEPQ_AUTH",
    kind: "string",
    default: "",
    help: "required: every RPC needs an API key (stepq keys create); off: none. Default: off on a loopback --host, else required.",
  },
  { flag: "tls-cert", env: "STEPQ_TLS_CERT", kind: "string", default: "", help: "PEM certificate chain: serve TLS only (HTTP/2 by ALPN, or HTTP/1.1)." },
  { flag: "tls-key", env: "STEPQ_TLS_KEY", kind: "string", default: "", help: "PEM private key of --tls-cert." },
  {
    flag: "insecure",
    env: "STEPQ_INSECURE",
    kind: "bool",
    default: "false",
    help: "Allow --auth off on an address other than loopback (then anyone who reaches the port can do anything).",
  },
  { flag: "retention", env: "STEPQ_RETENTION", kind: "duration", default: "24h", help: "How long finished jobs, their output and logs are kept." },
  { flag: "max-queued-per-route", env: "STEPQ_MAX_QUEUED_PER_ROUTE", kind: "int", default: "0", help: "Most queued steps per route; submits beyond get RESOURCE_EXHAUSTED (0: no limit)." },
  {
    flag: "max-submits-per-second",
    env: "STEPQ_MAX_SUBMITS_PER_SECOND",
    kind: "int",
    default: "0",
    help: "Most jobs each tenant may submit per second, across every server of the queue; beyond get RESOURCE_EXHAUSTED (0: no limit).",
  },
  {
    flag: "max-queued-per-tenant",
    env: "STEPQ_MAX_QUEUED_PER_TENANT",
    kind: "int",
    default: "0",
    help: "Most steps each tenant may have waiting to run (submitted, not yet running or finished); submits beyond get RESOURCE_EXHAUSTED (0: no limit).",
  },
  {
    flag: "max-running-per-tenant",
    env: "STEPQ_MAX_RUNNING_PER_TENANT",
    kind: "int",
    default: "0",
    help: "Most steps each tenant may have running at once, across every worker (the queue's value, set in Redis by the server); its other steps wait (0: no limit).",
  },
  {
    flag: "cors-origins",
    env: "STEPQ_CORS_ORIGINS",
    kind: "list",
    default: "",
    help: "Origins whose browser pages may call this server, e.g. https://app.example.com,http://localhost:5173 (* for every origin; default: none, no cross-origin access).",
  },
  { flag: "max-steps-per-job", env: "STEPQ_MAX_STEPS_PER_JOB", kind: "int", default: "100", help: "Most steps in one job." },
  {
    flag: "max-operation-bytes",
    env: "STEPQ_MAX_OPERATION_BYTES",
    kind: "bytes",
    default: "1MiB",
    help: "Largest encoded operation of one step, at submit and once its references to other steps' outputs are resolved (a larger one fails with OPERATION_TOO_LARGE). Queue-wide, as max-output-bytes.",
  },
  { flag: "max-request-bytes", env: "STEPQ_MAX_REQUEST_BYTES", kind: "bytes", default: "8MiB", help: "Largest request message." },
  {
    flag: "max-inflight-request-bytes",
    env: "STEPQ_MAX_INFLIGHT_REQUEST_BYTES",
    kind: "bytes",
    default: "16MiB",
    help: "Request bytes this server reads and handles at once (a request takes ~7x its size in memory while handled); a request that does not fit waits (its body unread) and then gets RESOURCE_EXHAUSTED.",
  },
  { flag: "inflight-wait", env: "STEPQ_INFLIGHT_WAIT", kind: "duration", default: "10s", help: "How long a request waits for room under --max-inflight-request-bytes." },
  {
    flag: "max-output-bytes",
    env: "STEPQ_MAX_OUTPUT_BYTES",
    kind: "bytes",
    default: "4MiB",
    help: "Most output (tokens, narration) one attempt of a step may write, and its largest result; past it the step fails with OUTPUT_TOO_LARGE. Queue-wide: the last server started sets it.",
  },
  {
    flag: "max-job-bytes",
    env: "STEPQ_MAX_JOB_BYTES",
    kind: "bytes",
    default: "16MiB",
    help: "Largest stored job (specs, results, errors); a result that would pass it fails its step with OUTPUT_TOO_LARGE. Also the bytes one List* page may load. Queue-wide, as max-output-bytes.",
  },
  { flag: "max-tokens-limit", env: "STEPQ_MAX_TOKENS_LIMIT", kind: "int", default: "32768", help: "Highest max_tokens an infer step may ask for." },
  { flag: "max-streams", env: "STEPQ_MAX_STREAMS", kind: "int", default: "10000", help: "Most server streams open at once on this server; more get RESOURCE_EXHAUSTED." },
  {
    flag: "operation-defaults",
    env: "STEPQ_OPERATION_DEFAULTS",
    kind: "list",
    default: "",
    help: "Per-operation defaults, e.g. infer.timeout=10m,infer.queue-timeout=5m,infer.attempts=3,echo.attempts=1 (kinds: infer, embed, echo).",
  },
  { flag: "events-max-len", env: "STEPQ_EVENTS_MAX_LEN", kind: "int", default: "100000", help: "Approximate cap of the queue-wide events stream, in events (an entry may hold many)." },
  { flag: "sweep-interval", env: "STEPQ_SWEEP_INTERVAL", kind: "duration", default: "1s", help: "How often this process recovers expired leases and deletes expired jobs." },
  { flag: "shutdown-grace", env: "STEPQ_SHUTDOWN_GRACE", kind: "duration", default: "10s", help: "How long requests in flight may finish on SIGINT/SIGTERM." },
  { flag: "sniff-timeout", env: "STEPQ_SNIFF_TIMEOUT", kind: "duration", default: "10s", help: "A new connection that sends nothing within this is closed." },
  { flag: "headers-timeout", env: "STEPQ_HEADERS_TIMEOUT", kind: "duration", default: "15s", help: "HTTP/1.1: a request's headers must arrive within this (else 408)." },
  {
    flag: "request-timeout",
    env: "STEPQ_REQUEST_TIMEOUT",
    kind: "duration",
    default: "60s",
    help: "A whole request (headers and body) must arrive within this: HTTP/1.1 gets 408, an HTTP/2 stream is reset. Responses (streams) may take as long as they need.",
  },
  { flag: "idle-timeout", env: "STEPQ_IDLE_TIMEOUT", kind: "duration", default: "65s", help: "A keep-alive HTTP/1.1 connection or an HTTP/2 session with no request in flight is closed after this." },
  { flag: "max-connections-per-client", env: "STEPQ_MAX_CONNECTIONS_PER_CLIENT", kind: "int", default: "1024", help: "Connections one client address may hold at once; more are closed on arrival." },
  { flag: "max-connections", env: "STEPQ_MAX_CONNECTIONS", kind: "int", default: "8192", help: "Connections this server holds at once (keep it under the open-file limit, ulimit -n); more are closed on arrival." },
  {
    flag: "max-stream-buffer-bytes",
    env: "STEPQ_MAX_STREAM_BUFFER_BYTES",
    kind: "bytes",
    default: "1MiB",
    help: "Most output one stream may hold in this server (queued by the stream hub plus unsent in its HTTP response) while its reader lags; past it the stream is paused and reads again from its own cursor when the reader catches up.",
  },
  {
    flag: "max-stream-buffers-bytes",
    env: "STEPQ_MAX_STREAM_BUFFERS_BYTES",
    kind: "bytes",
    default: "64MiB",
    help: "Most output all streams together may hold queued in this server; past it, every stream that has not taken its last delivery is paused.",
  },
  {
    flag: "stream-stall-timeout",
    env: "STEPQ_STREAM_STALL_TIMEOUT",
    kind: "duration",
    default: "5m",
    help: "How long a stream's reader may take nothing while its output waits (paused past max-stream-buffer-bytes, or catching up) before the server ends the stream with RESOURCE_EXHAUSTED (HTTP/2: reset with ENHANCE_YOUR_CALM); 0: never.",
  },
  {
    flag: "legacy-routes",
    env: "STEPQ_LEGACY_ROUTES",
    kind: "string",
    default: "on",
    help: "Serve the old routes of the systems stepq replaces (/submit-job, /v1/jobs, /v1/inference...; docs/migration.md): on or off.",
  },
  {
    flag: "sse-keep-alive",
    env: "STEPQ_SSE_KEEP_ALIVE",
    kind: "duration",
    default: "15s",
    help: "How often an idle server-sent events stream gets a comment line, so proxies keep it open (0: never).",
  },
];

export interface ServerConfig {
  redisUrl: string;
  /** PEM of --redis-ca. */
  redisCa?: string;
  port: number;
  host: string;
  /** Whether every RPC needs an API key. */
  auth: "required" | "off";
  /** Certificate and key: every connection is TLS. */
  tls?: TlsFiles;
  queue: string;
  limits: LimitOverrides;
  maxRequestBytes: number;
  maxInflightRequestBytes: number;
  inflightWaitMs: number;
  maxStreams: number;
  eventsMaxLen: number;
  sweepIntervalMs: number;
  shutdownGraceMs: number;
  connections: ConnectionLimits;
  /** Origins whose browser pages may call the server (--cors-origins); empty: none. */
  corsOrigins: string[];
  maxStreamBufferBytes: number;
  maxStreamBuffersBytes: number;
  streamStallTimeoutMs: number;
  /** Comment-line interval of idle server-sent events streams (--sse-keep-alive). */
  sseKeepAliveMs: number;
  /** Whether the old systems' routes are served (--legacy-routes). */
  legacyRoutes: boolean;
}

/** The configuration from `argv` and the environment. */
export function serverConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): ServerConfig & { help: boolean } {
  const { values: v, help } = parseOptions(SERVER_OPTIONS, argv, env);
  return {
    help,
    redisUrl: v["redis-url"] as string,
    redisCa: redisCaOption(v["redis-ca"] as string, v["redis-url"] as string),
    port: v.port as number,
    host: v.host as string,
    auth: authMode(v.auth as string, v.host as string, v.insecure as boolean),
    ...tlsFiles(v["tls-cert"] as string, v["tls-key"] as string),
    queue: v.queue as string,
    limits: {
      retentionMs: v.retention as number,
      maxQueuedPerRoute: v["max-queued-per-route"] as number,
      maxSubmitsPerSecond: v["max-submits-per-second"] as number,
      maxQueuedPerTenant: v["max-queued-per-tenant"] as number,
      maxRunningPerTenant: v["max-running-per-tenant"] as number,
      maxStepsPerJob: v["max-steps-per-job"] as number,
      maxOperationBytes: v["max-operation-bytes"] as number,
      maxOutputBytes: v["max-output-bytes"] as number,
      maxJobBytes: v["max-job-bytes"] as number,
      maxTokensLimit: v["max-tokens-limit"] as number,
      operations: parseOperationDefaults(v["operation-defaults"] as string[]),
    },
    maxStreams: v["max-streams"] as number,
    maxRequestBytes: v["max-request-bytes"] as number,
    maxInflightRequestBytes: v["max-inflight-request-bytes"] as number,
    inflightWaitMs: v["inflight-wait"] as number,
    eventsMaxLen: v["events-max-len"] as number,
    sweepIntervalMs: v["sweep-interval"] as number,
    shutdownGraceMs: v["shutdown-grace"] as number,
    connections: {
      sniffTimeoutMs: v["sniff-timeout"] as number,
      headersTimeoutMs: v["headers-timeout"] as number,
      requestTimeoutMs: v["request-timeout"] as number,
      idleTimeoutMs: v["idle-timeout"] as number,
      maxConnectionsPerClient: v["max-connections-per-client"] as number,
      maxConnections: v["max-connections"] as number,
      // Four of the largest replies (job records) queued on one HTTP/2 connection before new calls on it wait for a new one.
      sessionMemoryBytes: Math.max(64 * 1024 * 1024, 4 * (v["max-job-bytes"] as number)),
    },
    corsOrigins: checkCorsOrigins(v["cors-origins"] as string[]),
    maxStreamBufferBytes: v["max-stream-buffer-bytes"] as number,
    maxStreamBuffersBytes: v["max-stream-buffers-bytes"] as number,
    streamStallTimeoutMs: v["stream-stall-timeout"] as number,
    sseKeepAliveMs: v["sse-keep-alive"] as number,
    legacyRoutes: onOff("--legacy-routes", v["legacy-routes"] as string),
  };
}

/** The certificate and key files, read now (a bad path fails at start, naming its flag). */
function tlsFiles(certPath: string, keyPath: string): { tls?: TlsFiles } {
  if (certPath === "" && keyPath === "") return {};
  if (certPath === "" || keyPath === "") throw new OptionError("--tls-cert and --tls-key go together: give both, or neither");
  const read = (flag: string, path: string) => {
    try {
      return readFileSync(path);
    } catch (e) {
      throw new OptionError(`${flag}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  };
  return { tls: { cert: read("--tls-cert", certPath), key: read("--tls-key", keyPath) } };
}

/** Whether `host` only takes connections from this machine. */
export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** --auth, defaulted by the address, with no auth off the loopback unless --insecure says so. */
/** An on/off flag's value. */
function onOff(flag: string, value: string): boolean {
  if (value !== "on" && value !== "off") throw new OptionError(`${flag}: "${value}" is not on or off`);
  return value === "on";
}

function authMode(flag: string, host: string, insecure: boolean): "required" | "off" {
  if (flag !== "" && flag !== "required" && flag !== "off") throw new OptionError(`--auth: "${flag}" is not required or off`);
  const mode = flag === "" ? (isLoopback(host) ? "off" : "required") : flag;
  if (mode === "off" && !isLoopback(host) && !insecure) {
    throw new OptionError(
      `--auth off on ${host} would let anyone who reaches the port read, submit and cancel everything; ` +
        "create keys with stepq keys create and keep --auth required, or pass --insecure",
    );
  }
  return mode;
}

/** Parses `infer.timeout=10m,echo.attempts=1` into per-kind overrides. */
export function parseOperationDefaults(items: readonly string[]): NonNullable<LimitOverrides["operations"]> {
  const out: Record<string, Partial<OperationDefaults>> = {};
  for (const item of items) {
    const m = /^(infer|embed|echo)\.(timeout|queue-timeout|attempts)=(.+)$/.exec(item);
    if (!m) {
      throw new OptionError(
        `--operation-defaults: "${item}" is not KIND.SETTING=VALUE (kinds infer, embed, echo; settings timeout, queue-timeout, attempts)`,
      );
    }
    const [, kind, setting, value] = m as unknown as [string, string, string, string];
    const entry = (out[kind] ??= {});
    if (setting === "attempts") {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1 || n > 100) throw new OptionError(`--operation-defaults: ${kind}.attempts must be 1 to 100`);
      entry.maxAttempts = n;
    } else if (setting === "timeout") entry.timeoutMs = parseDuration(value);
    else entry.queueTimeoutMs = parseDuration(value);
  }
  return out;
}

export const SERVER_HELP = helpText(
  "stepq serve [options]",
  "Runs the stepq API server: StepService and JobService over Connect, gRPC and gRPC-Web on one port\n" +
    "(HTTP/1.1 and HTTP/2 cleartext), plus GET /healthz (503 while Redis is unreachable).",
  SERVER_OPTIONS,
);
