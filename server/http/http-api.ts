/**
 * The server's HTTP routes that are not RPCs: a table of (method, path)
 * routes, each family with its own error shape (SSE and stepq's own routes
 * answer Connect-style JSON errors; the OpenAI-compatible routes OpenAI's;
 * the old systems' routes theirs). Each route translates to calls of the
 * RPCs through the internal transport (internal-transport.ts), so the RPCs'
 * interceptors, limits and errors apply to it unchanged.
 *
 * No route can end the process: whatever a route throws is answered in its
 * family's shape (or, once the response started, ends it) and logged when it
 * is not a client error.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeToHttpStatus } from "@connectrpc/connect/protocol-connect";
import type { InternalTransport } from "./internal-transport.js";

export type HttpRequest = IncomingMessage | Http2ServerRequest;
export type HttpResponse = ServerResponse | Http2ServerResponse;

/** One request to a route. */
export interface RouteCall {
  req: HttpRequest;
  res: HttpResponse;
  /** The path's captured groups, decoded. */
  params: string[];
  url: URL;
  /** Aborted when the client goes away or the response ends. */
  signal: AbortSignal;
  /** What a call of the RPCs on this request's behalf takes (its credentials, its response). */
  callOptions(): ReturnType<InternalTransport["callOptions"]>;
}

/** How a family of routes answers an error (before its response started), with HTTP status `status`. */
export type ErrorWriter = (res: HttpResponse, err: ConnectError, status: number) => void;

/** An error with an HTTP status of its own (a body too large: 413), beside its code. */
export class HttpStatusError extends ConnectError {
  constructor(
    message: string,
    code: Code,
    readonly httpStatus: number,
  ) {
    super(message, code);
  }
}

/**
 * The HTTP status of an error: its own (HttpStatusError; read as a field,
 * since ConnectError's instanceof accepts any ConnectError), else Connect's
 * mapping of its code.
 */
export function statusOf(err: ConnectError): number {
  return (err as Partial<HttpStatusError>).httpStatus ?? codeToHttpStatus(err.code);
}

export interface HttpRoute {
  method: "GET" | "POST" | "DELETE";
  path: RegExp;
  /** Answers the error of a call that failed before it wrote anything. */
  fail: ErrorWriter;
  handle(call: RouteCall): Promise<void>;
}

export interface HttpApiOptions {
  /** The routes, with the internal transport their calls go through (server/http/http-routes.ts). */
  routes: { routes: readonly HttpRoute[]; internal: InternalTransport };
  /** Logs an unexpected error (not a client's). */
  log(err: Error): void;
}

/**
 * The credentials of `req`: its Authorization header, or (for EventSource and
 * browser WebSockets, which cannot set one) `?access_token=`.
 */
export function authorizationOf(req: HttpRequest, url: URL): string | undefined {
  const header = req.headers.authorization;
  if (header) return header;
  const token = url.searchParams.get("access_token");
  return token ? `Bearer ${token}` : undefined;
}

function decode(groups: string[]): string[] | undefined {
  try {
    return groups.map((g) => decodeURIComponent(g));
  } catch {
    return undefined;
  }
}

/** Returns the handler of the HTTP API: true if it took the request. */
export function createHttpApi(options: HttpApiOptions): (req: HttpRequest, res: HttpResponse) => boolean {
  return (req, res) => {
    const url = new URL(req.url ?? "/", "http://stepq.local");
    const matching = options.routes.routes.filter((r) => r.path.test(url.pathname));
    if (matching.length === 0) return false;
    const route = matching.find((r) => r.method === req.method || (r.method === "GET" && req.method === "HEAD"));
    if (!route) {
      const allow = [...new Set(matching.map((r) => r.method))].join(", ");
      (res as ServerResponse).setHeader("allow", allow);
      (matching[0] as HttpRoute).fail(res, new ConnectError(`${url.pathname} takes ${allow}, not ${req.method}`, Code.Unimplemented), 405);
      return true;
    }
    const params = decode(route.path.exec(url.pathname)?.slice(1) ?? []);
    if (!params) {
      const err = new ConnectError(`${url.pathname} is not a valid path: a part of it is not URL-encoded UTF-8`, Code.InvalidArgument);
      route.fail(res, err, statusOf(err));
      return true;
    }
    const abort = new AbortController();
    const stop = () => abort.abort();
    res.once("close", stop);
    const call: RouteCall = {
      req,
      res,
      params,
      url,
      signal: abort.signal,
      callOptions: () => options.routes.internal.callOptions(req, abort.signal, authorizationOf(req, url)),
    };
    route.handle(call).then(
      () => {
        if (!res.writableEnded) res.end();
      },
      (e: unknown) => {
        // A ConnectError is the RPCs' answer (already logged there when it was a fault); anything
        // else is this route's own fault: logged, and the client learns only that it happened.
        let err: ConnectError;
        if (e instanceof ConnectError) err = e;
        else {
          options.log(e instanceof Error ? e : new Error(String(e)));
          err = new ConnectError("internal error; the server log has the details", Code.Internal);
        }
        if (!res.headersSent) route.fail(res, err, statusOf(err));
        else if (!res.writableEnded) res.end();
      },
    );
    return true;
  };
}
