/**
 * Every HTTP route that is no RPC, in one table (server/http/http-api.ts
 * serves them): the server-sent events of steps and jobs.
 */
import type { HttpRoute } from "./http-api.js";
import type { InternalTransport } from "./internal-transport.js";
import { outputEventRoutes } from "./output-events-route.js";

export function httpRoutes(internal: InternalTransport): { routes: HttpRoute[]; internal: InternalTransport } {
  return { routes: [...outputEventRoutes(internal)], internal };
}
