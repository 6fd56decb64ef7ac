/**
 * Every HTTP route that is no RPC, in one table (server/http/http-api.ts
 * serves them): the server-sent events of steps and jobs, and the
 * OpenAI-compatible endpoint (chat completions, completions, embeddings,
 * models), and the old routes of the systems stepq replaces (legacy/).
 */
import type { HttpRoute } from "./http-api.js";
import type { InternalTransport } from "./internal-transport.js";
import { docsRoute } from "./docs-route.js";
import { jobQueueRoutes } from "./legacy/job-queue-routes.js";
import type { LegacyDeps, RecordUse } from "./legacy/legacy-route.js";
import { workerRoutes } from "./legacy/worker-routes.js";
import { embeddingsRoute } from "./openai/embeddings-route.js";
import { modelsRoutes } from "./openai/models-route.js";
import { textRoutes } from "./openai/text-routes.js";
import { outputEventRoutes } from "./output-events-route.js";

export interface HttpRoutesConfig {
  /** Comment-line interval of idle SSE streams (--sse-keep-alive). */
  sseKeepAliveMs: number;
  /** Largest request body (--max-request-bytes). */
  maxRequestBytes: number;
  /** Whether the old systems' routes are served (--legacy-routes). */
  legacyRoutes: boolean;
}

export function httpRoutes(internal: InternalTransport, config: HttpRoutesConfig, recordUse: RecordUse): { routes: HttpRoute[]; internal: InternalTransport } {
  const legacy: LegacyDeps = { internal, maxBytes: config.maxRequestBytes, keepAliveMs: config.sseKeepAliveMs, recordUse };
  const routes = [
    ...outputEventRoutes(internal, config.sseKeepAliveMs),
    ...textRoutes(internal, config.maxRequestBytes),
    embeddingsRoute(internal, config.maxRequestBytes),
    ...modelsRoutes(internal),
    ...(config.legacyRoutes ? [...jobQueueRoutes(legacy), ...workerRoutes(legacy), docsRoute()] : []),
  ];
  return { routes, internal };
}
