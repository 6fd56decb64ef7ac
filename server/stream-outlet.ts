/**
 * A stream's outlet: the HTTP response its messages go to once they leave
 * the stream hub. The hub counts what the response has not sent yet against
 * the stream's byte bound (a reader that stops reading fills the response's
 * buffer first), and drops the stream through it when its reader stalls.
 * Connect's handlers get theirs from the context (server/context.ts); the
 * direct writer (server/output-lane.ts) makes its own.
 */
import type { IncomingMessage } from "node:http";
import { constants, type Http2ServerRequest } from "node:http2";
import { createContextValues, type ContextValues, type HandlerContext } from "@connectrpc/connect";
import { kStreamOutlet } from "./context.js";

export interface StreamOutlet {
  /** Bytes written to the response and not yet sent to the client. */
  unsent(): number;
  /**
   * Drops the stream because its reader stalled: HTTP/2 resets it with
   * ENHANCE_YOUR_CALM, which gRPC and Connect clients report as
   * RESOURCE_EXHAUSTED; HTTP/1.1 closes the connection.
   */
  abandon(err: Error): void;
}

/** The outlet of the response to `req`. */
export function outletOf(req: IncomingMessage | Http2ServerRequest): StreamOutlet {
  const stream = (req as Http2ServerRequest).stream;
  if (stream) {
    return {
      unsent: () => stream.writableLength,
      abandon: () => {
        if (stream.destroyed) return;
        stream.close(constants.NGHTTP2_ENHANCE_YOUR_CALM);
        // A write still waiting on the stream fails with this (connect-node
        // takes ERR_STREAM_DESTROYED for a client that went away, not for a
        // handler failure to log); the client has the reset code already.
        stream.destroy(Object.assign(new Error("the server dropped this stalled stream"), { code: "ERR_STREAM_DESTROYED" }));
      },
    };
  }
  const socket = req.socket;
  return {
    unsent: () => socket.writableLength,
    abandon: () => socket.destroy(),
  };
}

/** Context values for connectNodeAdapter: each request carries its outlet. */
export function outletContext(req: IncomingMessage | Http2ServerRequest): ContextValues {
  return createContextValues().set(kStreamOutlet, outletOf(req));
}

/** The outlet of a Connect handler's response (none when served in memory, e.g. by a router transport). */
export function outletFromContext(ctx: HandlerContext): StreamOutlet | undefined {
  return ctx.values.get(kStreamOutlet);
}
