/**
 * Every HTTP route that is no RPC, in one table (server/http/http-api.ts
 * serves them): the server-sent events of steps and jobs.
 */
import type { HttpRoute } from "./http-api.js";
import type { InternalTransport } from "./internal-transport.js";
import { outputEventRoutes } from "./output-events-route.js";

export interface HttpRoutesConfig {
  /** Comment-line interval of idle SSE streams (--sse-keep-alive). */
  sseKeepAliveMs: number;
}

export function httpRoutes(internal: InternalTransport, config: HttpRoutesConfig): { routes: HttpRoute[]; internal: InternalTransport } {
  return { routes: [...outputEventRoutes(internal, config.sseKeepAliveMs)], internal };
}
