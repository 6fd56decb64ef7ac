/**
 * The server's settings: flags, environment variables and defaults that
 * work on a laptop (`stepq serve --help` prints this table).
 */
import type { LimitOverrides, OperationDefaults } from "../queue/limits.js";
import { readFileSync } from "node:fs";
import { checkCorsOrigins } from "./cors.js";
import type { ConnectionLimits, TlsFiles } from "./listen.js";
import { helpText, OptionError, parseDuration, parseOptions, redisCaOption } from "../runtime/options.js";
import { SERVER_OPTIONS } from "./server-options.js";

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
  /** Whether GET /metrics is served (--metrics). */
  metrics: boolean;
  /** Whether the old systems' routes are served (--legacy-routes). */
  legacyRoutes: boolean;
  /** What a submit to a route no live worker serves gets (--unserved-routes). */
  unservedRoutes: "wait" | "reject";
  /** Timeout of one webhook delivery attempt (--webhook-timeout). */
  webhookTimeoutMs: number;
  /** Failed deliveries in a row that disable a webhook (--webhook-disable-after). */
  webhookDisableAfter: number;
  /** Where webhooks may post (--webhook-targets): "" chooses by the listening address (any on loopback, else public). */
  webhookTargets: "" | "public" | "any";
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
    metrics: onOff("--metrics", v.metrics as string),
    legacyRoutes: onOff("--legacy-routes", v["legacy-routes"] as string),
    unservedRoutes: oneOf("--unserved-routes", v["unserved-routes"] as string, ["wait", "reject"] as const),
    webhookTimeoutMs: v["webhook-timeout"] as number,
    webhookDisableAfter: Math.max(1, v["webhook-disable-after"] as number),
    webhookTargets: oneOf("--webhook-targets", v["webhook-targets"] as string, ["", "public", "any"] as const),
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
/** A flag's value, one of `values`. */
function oneOf<T extends string>(flag: string, value: string, values: readonly T[]): T {
  if (!values.includes(value as T)) throw new OptionError(`${flag}: "${value}" is not ${values.join(" or ")}`);
  return value as T;
}

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
  "Runs the stepq API server: every stepq.v1 service over Connect, gRPC and gRPC-Web on one port\n" +
    "(HTTP/1.1 and HTTP/2 cleartext, or TLS), the dashboard at /, server-sent events, the OpenAI-compatible\n" +
    "/v1 endpoint, the WebSocket event feed, the old systems' routes, and GET /healthz (503 while Redis is\n" +
    "unreachable), GET /metrics for Prometheus.",
  SERVER_OPTIONS,
);
