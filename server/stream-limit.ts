/**
 * A cap on concurrent server streams per server process: each open stream
 * holds a subscription and buffers, so a flood of followers must get a clear
 * RESOURCE_EXHAUSTED (and go to another server) instead of exhausting memory.
 */
import type { Interceptor } from "@connectrpc/connect";
import { ResourceExhaustedError } from "../queue/errors.js";
import { toConnectError } from "./errors.js";

export interface StreamCounter {
  /** Streams open now. */
  readonly open: number;
}

/** Refuses a new server stream when `max` are already open. */
export function createStreamLimitInterceptor(max: number): Interceptor & StreamCounter {
  let open = 0;
  const interceptor: Interceptor = (next) => async (req) => {
    if (req.method.methodKind !== "server_streaming") return next(req);
    if (open >= max) {
      // This interceptor runs outside the error mapper: map here.
      throw toConnectError(
        new ResourceExhaustedError(`this server already serves ${open} streams, its limit (max_streams=${max}); retry later or use another server`),
      );
    }
    open++;
    let released = false;
    const release = () => {
      if (!released) {
        released = true;
        open--;
      }
    };
    try {
      const res = await next(req);
      if (!res.stream) {
        release();
        return res;
      }
      const counted = (async function* () {
        try {
          yield* res.message;
        } finally {
          release();
        }
      })();
      return { ...res, message: counted };
    } catch (e) {
      release();
      throw e;
    }
  };
  return Object.assign(interceptor, {
    get open() {
      return open;
    },
  });
}
