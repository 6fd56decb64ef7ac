/**
 * The server's one request handler: the health check, /metrics, the direct output
 * writer, and Connect for everything else.
 *
 * No request may end the process. Connect's Node adapter throws
 * synchronously for a request it cannot place (an HTTP/1.0 request may
 * legally come without a Host header, and connect-node needs an authority),
 * and a throw inside an HTTP server's request listener is an uncaught
 * exception. So a missing authority is filled in with the address the
 * request came in on, and anything else thrown while dispatching is logged
 * and answered with a generic 500, never rethrown.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { coerceError } from "../queue/errors.js";
import type { RequestHandler } from "./listen.js";
import { drainUnreadBody } from "./drain-unread-body.js";
import { refuseOversizeBody } from "./refusals.js";

type Request = IncomingMessage | Http2ServerRequest;
type Response = ServerResponse | Http2ServerResponse;

export interface RequestRoutes {
  /** Adds CORS headers for an allowed origin and answers its preflight; true if it answered (server/cors.ts). */
  cors?: (req: Request, res: Response) => boolean;
  /** Answers GET /healthz; true if `req` was one. */
  health(req: Request, res: Response): boolean;
  /** Answers GET /metrics (server/metrics/); true if `req` was one. Absent with --metrics off. */
  metrics?: (req: Request, res: Response) => boolean;
  /** Serves the dashboard's files at / (server/dashboard-files.ts); true if it took the request. */
  dashboard?: (req: Request, res: Response) => boolean;
  /** The HTTP routes that are no RPC (server-sent events; server/http/http-api.ts); true if it took the request. */
  http?: (req: Request, res: Response) => boolean;
  /** Serves the request on the direct output writer; true if it took it. */
  lane(req: Request, res: Response): boolean;
  /** Connect's handler, for every other request. */
  connect(req: Request, res: Response): void;
  /** Logs an unexpected error (the client learns only "internal error"). */
  log(err: Error): void;
  /** Largest request message (--max-request-bytes): a body declared larger is refused before it is read. */
  maxRequestBytes: number;
}

/** What a Host header may hold: a name or IPv4 address, or a bracketed IPv6 address, with an optional port. */
const HOST = /^(?:[A-Za-z0-9._~%!$&'()*+,;=-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/**
 * An HTTP/1.0 request without a Host header, or any HTTP/1.x request whose
 * Host is empty or not a host (connect-node builds a URL from it and throws
 * on an invalid one), gets the local address it was received on as its
 * authority, as servers do for HTTP/1.0. HTTP/1.1 without Host never gets
 * here (Node answers it 400) and HTTP/2 has `:authority`.
 */
function ensureAuthority(req: Request): void {
  if ("authority" in req) return;
  const host = req.headers.host;
  if (host !== undefined && HOST.test(host)) return;
  const { localAddress, localPort } = req.socket;
  if (localAddress === undefined) return;
  req.headers.host = localAddress.includes(":") ? `[${localAddress}]:${localPort}` : `${localAddress}:${localPort}`;
}

/** Answers 500 with a Connect-style error body, unless the response has started. */
function answerInternal(res: Response): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ code: "internal", message: "internal error; the server log has the details" });
  (res as ServerResponse).writeHead(500, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

/** The handler that dispatches every request to `routes`, and survives whatever they throw. */
export function createRequestHandler(routes: RequestRoutes): RequestHandler {
  return (req, res) => {
    try {
      if (!("stream" in req)) drainUnreadBody(req, res as ServerResponse); // HTTP/2: each request is its own stream
      if (routes.cors?.(req, res)) return;
      if (routes.health(req, res)) return;
      if (routes.metrics?.(req, res)) return;
      // The HTTP routes read their bodies themselves, bounded, and refuse one too large in their own shape.
      if (routes.http?.(req, res)) return;
      if (routes.dashboard?.(req, res)) return;
      if (refuseOversizeBody(req, res, routes.maxRequestBytes)) {
        req.resume(); // refused unread: drop the body as it comes (on HTTP/1.1 drainUnreadBody also closes if it never ends)
        return;
      }
      ensureAuthority(req);
      if (!routes.lane(req, res)) routes.connect(req, res);
    } catch (e) {
      routes.log(coerceError(e));
      try {
        answerInternal(res);
      } catch {
        res.destroy();
      }
    }
  };
}
