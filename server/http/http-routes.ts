/**
 * Every HTTP route that is no RPC, in one table (server/http/http-api.ts
 * serves them): the server-sent events of steps and jobs, and the
 * OpenAI-compatible endpoint (chat completions, completions, embeddings,
 * models).
 */
import type { HttpRoute } from "./http-api.js";
import type { InternalTransport } from "./internal-transport.js";
import { embeddingsRoute } from "./openai/embeddings-route.js";
import { modelsRoutes } from "./openai/models-route.js";
import { textRoutes } from "./openai/text-routes.js";
import { outputEventRoutes } from "./output-events-route.js";

export interface HttpRoutesConfig {
  /** Comment-line interval of idle SSE streams (--sse-keep-alive). */
  sseKeepAliveMs: number;
  /** Largest request body (--max-request-bytes). */
  maxRequestBytes: number;
}

export function httpRoutes(internal: InternalTransport, config: HttpRoutesConfig): { routes: HttpRoute[]; internal: InternalTransport } {
  const routes = [
    ...outputEventRoutes(internal, config.sseKeepAliveMs),
    ...textRoutes(internal, config.maxRequestBytes),
    embeddingsRoute(internal, config.maxRequestBytes),
    ...modelsRoutes(internal),
  ];
  return { routes, internal };
}
