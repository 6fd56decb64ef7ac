/**
 * The stepq server: builds the Connect router (StepService, JobService),
 * the stream hub and the sweeper over one Redis, and listens on one port.
 * `buildServer` is what tests and `stepq dev` call; running this file starts
 * a server from flags and environment (see `--help`).
 */
import type { Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Registry } from "prom-client";
import { createLogger, type Logger } from "../runtime/logger.js";
import { isMainModule } from "../runtime/main-module.js";
import { startTracing, tracingOn } from "../runtime/tracing.js";
import { traceInterceptor } from "./trace-interceptor.js";
import { VERSION } from "../runtime/version.js";
import { OptionError } from "../runtime/options.js";
import type { Queue } from "../queue/queue.js";
import { recordLegacyUse } from "../queue/legacy-usage.js";
import { startApiKeyAuth } from "./api-key-auth.js";
import { isLoopback, type ServerConfig, SERVER_HELP, serverConfig } from "./config.js";
import { createConnectOptions } from "./connect-options.js";
import { createCors } from "./cors.js";
import { answerHealth, answerLive, healthRequest } from "./health.js";
import { listen } from "./listen.js";
import { openFileLimitWarning } from "./open-file-limit.js";
import { createRequestBudget, type RequestBudget } from "./request-budget.js";
import { createRequestHandler } from "./request-handler.js";
import { createHttpApi } from "./http/http-api.js";
import { httpRoutes } from "./http/http-routes.js";
import { createInternalTransport } from "./http/internal-transport.js";
import { createUnservedCheck } from "./unserved-routes.js";
import { createLiveFleet } from "./live-fleet.js";
import { createDashboardFiles, defaultDashboardDir } from "./dashboard-files.js";
import { createEventsWs } from "./events/events-ws.js";
import { createOutputLane } from "./output-lane.js";
import { createStreamSlots } from "./stream-limit.js";
import { createServerMetrics } from "./metrics/server-metrics.js";
import { openServerBackend } from "./server-backend.js";
import type { StreamHub } from "./stream-hub.js";

export { VERSION };

export interface StepqServer {
  /** Base URL, e.g. http://127.0.0.1:8080. */
  readonly url: string;
  readonly port: number;
  readonly queue: Queue;
  readonly hub: StreamHub;
  /** Request bytes in flight (--max-inflight-request-bytes). */
  readonly requestBudget: RequestBudget;
  /** The registry behind GET /metrics (undefined with --metrics off). */
  readonly metrics: Registry | undefined;
  /** Graceful shutdown: stop accepting, end streams, finish requests, close Redis. */
  close(): Promise<void>;
}

export interface BuildServerOptions extends Partial<ServerConfig> {
  logger?: Logger;
  /**
   * Interceptors for every RPC, outermost first: they run before the
   * server's own (stream slots, error mapping), for calls Connect dispatches
   * and for the streams the output lane writes itself alike.
   */
  interceptors?: Interceptor[];
  /** The built dashboard's folder (default: dist/dashboard, found above the server's code). */
  dashboardDir?: string;
}

/** Builds and starts a server. */
export async function buildServer(options: BuildServerOptions = {}): Promise<StepqServer> {
  const config = { ...serverConfig([], {}), ...options };
  const log = options.logger ?? createLogger("server");
  const backend = await openServerBackend(config, log);
  const { redis, queue, hub } = backend;

  const fleet = createLiveFleet(queue);
  const deps = { queue, hub, fleet, webhooks: backend.webhooks, unserved: createUnservedCheck(fleet, config.unservedRoutes) };
  const slots = createStreamSlots(config.maxStreams);
  const logUnexpected = (err: Error) => log.error("unexpected error in a handler", { error: err, stack: err.stack });
  // A caller that moved the host without saying how to authenticate gets the default for that host.
  const authMode = options.auth ?? (isLoopback(config.host) ? "off" : "required");
  const auth = authMode === "required" ? startApiKeyAuth(redis, config.redisUrl, queue.keys, backend.onRedisError, config.redisCa) : undefined;
  // Tracing first, so refused calls are traced too; none when tracing is off (runtime/tracing.ts).
  const interceptors = [...(tracingOn() ? [traceInterceptor()] : []), ...(auth ? [auth.interceptor] : []), ...(options.interceptors ?? [])];
  const outputLane = createOutputLane(deps, { slots, readMaxBytes: config.maxRequestBytes, log: logUnexpected, interceptors });
  const metrics = config.metrics ? createServerMetrics({ queue, slots, hub, log: logUnexpected }) : undefined;
  const budget = createRequestBudget(config.maxInflightRequestBytes, config.inflightWaitMs);
  const connectOptions = createConnectOptions({ deps, slots, maxRequestBytes: config.maxRequestBytes, budget, log: logUnexpected, interceptors });
  const connect = connectNodeAdapter(connectOptions);

  const internal = createInternalTransport(connectOptions);
  const recordUse = (name: string, uses = 1) => recordLegacyUse(redis, queue.keys, name, uses);
  const http = createHttpApi({ routes: httpRoutes(internal, config, recordUse), log: logUnexpected });
  const handler = createRequestHandler({
    cors: createCors(config.corsOrigins),
    health(req, res) {
      const check = healthRequest(req);
      if (check === undefined) return false;
      if (check === "live") answerLive(res, { version: VERSION });
      else answerHealth(redis, res, { queue: config.queue, version: VERSION }).catch(logUnexpected);
      return true;
    },
    metrics: metrics?.handle,
    http,
    dashboard: createDashboardFiles(options.dashboardDir ?? defaultDashboardDir()),
    lane: (req, res) => outputLane.handle(req, res),
    connect: (req, res) => connect(req as Parameters<typeof connect>[0], res as Parameters<typeof connect>[1]),
    log: logUnexpected,
    maxRequestBytes: config.maxRequestBytes,
  });
  const eventsWs = createEventsWs({ internal, corsOrigins: config.corsOrigins, recordUse, log: logUnexpected });
  const listener = await listen(handler, config.port, config.host, config.connections, config.tls, eventsWs);
  const fdWarning = openFileLimitWarning(config.connections.maxConnections);
  if (fdWarning) log.warn(fdWarning);
  const host = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host;
  const url = `${config.tls ? "https" : "http"}://${host}:${listener.port}`;
  log.info("listening", { url, queue: config.queue, redis: redactUrl(config.redisUrl), auth: authMode });
  if (!auth) log.warn(`auth is off: anyone who can reach ${url} can read, submit and cancel everything (fine on loopback)`);

  let closing: Promise<void> | undefined;
  return {
    url,
    port: listener.port,
    queue,
    hub,
    requestBudget: budget,
    metrics: metrics?.registry,
    close() {
      closing ??= (async () => {
        backend.stop();
        auth?.close();
        await listener.close(config.shutdownGraceMs);
        await backend.close();
        log.info("stopped");
      })();
      return closing;
    },
  };
}

/** The URL without its password, for logs. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:***@");
}

/** Runs a server from `argv` until SIGINT/SIGTERM. */
export async function runServerCommand(argv: readonly string[]): Promise<number> {
  let config;
  try {
    config = serverConfig(argv);
  } catch (e) {
    if (e instanceof OptionError) {
      process.stderr.write(`stepq serve: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  if (config.help) {
    process.stdout.write(SERVER_HELP);
    return 0;
  }
  const tracing = await startTracing("stepq-server");
  const server = await buildServer(config);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  await server.close();
  await tracing?.shutdown();
  return 0;
}

if (isMainModule(import.meta.url)) {
  runServerCommand(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`stepq serve: ${(e as Error).stack ?? String(e)}\n`);
      process.exit(1);
    },
  );
}
