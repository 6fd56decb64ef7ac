/**
 * CORS for browser clients on other origins: only the origins listed in
 * --cors-origins (none by default: no cross-origin access) get the
 * Access-Control headers, built from the `cors` constants that
 * @connectrpc/connect exports for Connect, gRPC-Web and their headers
 * (plus Authorization, for API keys). A preflight is answered here, cached
 * by the browser for two hours. The `cors` package (expressjs) does the
 * work: a well-kept helper rather than hand-written header logic.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { cors as connectCors } from "@connectrpc/connect";
import corsMiddleware from "cors";
import { OptionError } from "../runtime/options.js";

type Request = IncomingMessage | Http2ServerRequest;
type Response = ServerResponse | Http2ServerResponse;

/** How long a browser may reuse a preflight's answer, seconds. */
export const PREFLIGHT_MAX_AGE_S = 7200;

/** An origin as browsers send it: scheme://host[:port], nothing after. */
const ORIGIN = /^https?:\/\/(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/** Checks --cors-origins: each `*` (every origin) or an origin such as https://app.example.com. */
export function checkCorsOrigins(origins: readonly string[]): string[] {
  for (const o of origins) {
    if (o !== "*" && !ORIGIN.test(o)) {
      throw new OptionError(`--cors-origins: ${JSON.stringify(o)} is not an origin; give scheme://host[:port] with no path, e.g. https://app.example.com, or *`);
    }
  }
  return [...origins];
}

/**
 * Adds CORS headers for a request from an allowed origin; answers its
 * preflight (OPTIONS) and returns true then. Undefined when no origin is
 * allowed.
 */
export function createCors(origins: readonly string[]): ((req: Request, res: Response) => boolean) | undefined {
  if (origins.length === 0) return undefined;
  const middleware = corsMiddleware({
    origin: origins.includes("*") ? "*" : [...origins],
    methods: [...connectCors.allowedMethods],
    allowedHeaders: [...connectCors.allowedHeaders, "Authorization"],
    exposedHeaders: [...connectCors.exposedHeaders],
    maxAge: PREFLIGHT_MAX_AGE_S,
  });
  return (req, res) => {
    if (req.headers.origin === undefined) return false;
    let passed = false;
    // With static options the middleware runs synchronously: it calls next, or ends a preflight.
    middleware(req as never, res as never, () => {
      passed = true;
    });
    return !passed;
  };
}
