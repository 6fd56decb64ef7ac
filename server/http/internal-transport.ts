/**
 * The HTTP routes that are not RPCs (server-sent events, the
 * OpenAI-compatible endpoint, the old systems' routes) do their work by
 * calling the RPCs, in process, through this transport: the same services,
 * handler wrappers and interceptors (authentication, stream slots, error
 * mapping) as the Connect adapter, so one chain guards every route and a
 * route is a translation, never a second implementation.
 *
 * Connect's own in-memory transport (createRouterTransport) does not carry
 * context values to the handler, and the stream handlers need the outer
 * HTTP response (its unsent bytes bound a stream's buffer, and a stalled
 * reader is dropped through it) and whether its connection is gone. So the
 * client function here passes them: each call's options carry a one-time
 * token header that names its context values (`callOptions`).
 */
import type { IncomingMessage } from "node:http";
import type { Http2ServerRequest } from "node:http2";
import { randomUUID } from "node:crypto";
import { type CallOptions, type ContextValues, createConnectRouter, createContextValues, type Transport } from "@connectrpc/connect";
import type { ConnectNodeAdapterOptions } from "@connectrpc/connect-node";
import { createAsyncIterable, type UniversalClientFn } from "@connectrpc/connect/protocol";
import { createTransport } from "@connectrpc/connect/protocol-connect";
import { kStreamOutlet, transportGone } from "../context.js";
import { outletOf } from "../stream-outlet.js";

/** Names a call's context values; only this transport's calls carry it (it never reaches a handler). */
const CALL_TOKEN = "x-stepq-internal-call";

export interface InternalTransport {
  readonly transport: Transport;
  /**
   * Options for a call made on behalf of HTTP request `req`: its signal, the
   * caller's credentials (`authorization`, as the client sent them), and the
   * context the stream handlers read from a request (its response, its
   * connection's state).
   */
  callOptions(req: IncomingMessage | Http2ServerRequest, signal: AbortSignal, authorization: string | undefined): CallOptions;
}

/** A transport to the services `options` (the Connect adapter's) describe. */
export function createInternalTransport(options: ConnectNodeAdapterOptions): InternalTransport {
  const router = createConnectRouter({
    interceptors: options.interceptors,
    readMaxBytes: options.readMaxBytes,
    jsonOptions: options.jsonOptions,
    acceptCompression: options.acceptCompression,
    grpc: false,
    grpcWeb: false,
  });
  options.routes?.(router);
  const handlers = new Map(router.handlers.map((h) => [h.requestPath, h]));
  const contexts = new Map<string, ContextValues>();

  const httpClient: UniversalClientFn = async (call) => {
    const path = new URL(call.url).pathname;
    const handler = handlers.get(path);
    if (!handler) throw new Error(`no RPC at ${path}`);
    const token = call.header.get(CALL_TOKEN) ?? "";
    call.header.delete(CALL_TOKEN);
    const contextValues = contexts.get(token);
    contexts.delete(token);
    const res = await handler({
      httpVersion: "1.1",
      method: call.method,
      url: call.url,
      header: call.header,
      body: call.body ?? createAsyncIterable([]),
      signal: call.signal ?? new AbortController().signal,
      contextValues,
    });
    return {
      status: res.status,
      header: new Headers(res.header),
      body: res.body ?? createAsyncIterable([]),
      trailer: new Headers(res.trailer),
    };
  };

  const transport = createTransport({
    httpClient,
    baseUrl: "http://stepq.internal",
    useBinaryFormat: true,
    interceptors: [],
    acceptCompression: [],
    sendCompression: null,
    compressMinBytes: Number.MAX_SAFE_INTEGER,
    readMaxBytes: Number.MAX_SAFE_INTEGER,
    writeMaxBytes: Number.MAX_SAFE_INTEGER,
  });

  return {
    transport,
    callOptions(req, signal, authorization) {
      const token = randomUUID();
      const gone = () => ("stream" in req ? req.stream.destroyed || req.stream.closed : req.socket.destroyed);
      contexts.set(token, createContextValues().set(transportGone, gone).set(kStreamOutlet, outletOf(req)));
      // A call that never reaches the client function (refused before it) must not leave its entry behind.
      signal.addEventListener("abort", () => contexts.delete(token), { once: true });
      const headers: Record<string, string> = { [CALL_TOKEN]: token };
      if (authorization) headers.authorization = authorization;
      return { signal, headers };
    },
  };
}
