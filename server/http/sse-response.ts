/**
 * A server-sent events response (the `text/event-stream` format browsers'
 * EventSource reads): events with an id (the stream cursor, so a client
 * resumes with Last-Event-ID), a type and one line of JSON data; a comment
 * every KEEP_ALIVE_MS so proxies and load balancers keep an idle stream
 * open (--sse-keep-alive, 15 s); `retry:` telling EventSource how soon to reconnect.
 *
 * A write that the socket cannot take at once waits for it to drain before
 * the next message is pulled, so what the response holds is bounded by the
 * socket's buffer; the stream hub behind the RPC bounds the rest and drops a
 * reader that stalls (--stream-stall-timeout).
 */
import { once } from "node:events";
import type { ServerResponse } from "node:http";
import type { HttpResponse } from "./http-api.js";

/** What EventSource waits before reconnecting after a dropped connection. */
export const RETRY_MS = 1_000;

export interface SseResponse {
  /** Writes one event; resolves once the socket can take more. */
  send(event: string, data: unknown, id?: string): Promise<void>;
  /** Writes an event of data alone (`data: <text>`, with `id:` when given), as OpenAI's and the old systems' streams do; resolves once the socket can take more. */
  data(text: string, id?: string): Promise<void>;
  /** Stops the keep-alive comments and ends the response. */
  end(): void;
}

/** Starts the SSE response: headers, `retry:`, and keep-alive comments until `end` or the client goes. */
export function startSse(response: HttpResponse, keepAliveMs: number): SseResponse {
  const res = response as ServerResponse; // the HTTP/2 response has the same calls
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache, no-transform",
    "x-accel-buffering": "no",
  });
  res.write(`retry: ${RETRY_MS}\n\n`);
  const timer = keepAliveMs > 0 ? setInterval(() => res.writableEnded || res.write(": keep-alive\n\n"), keepAliveMs) : undefined;
  timer?.unref();
  res.once("close", () => clearInterval(timer));
  const write = async (text: string) => {
    if (res.writableEnded || res.destroyed) return;
    if (!res.write(text)) await Promise.race([once(res, "drain"), once(res, "close")]);
  };
  return {
    // JSON.stringify escapes line breaks, so the data is one line, as the format needs.
    send: (event, data, id) => write(`${id ? `id: ${id}\n` : ""}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`),
    data: (text, id) => write(`${id ? `id: ${id}\n` : ""}data: ${text}\n\n`),
    end() {
      clearInterval(timer);
      if (!res.writableEnded) res.end();
    },
  };
}
