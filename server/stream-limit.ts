/**
 * A cap on concurrent server streams per server process: each open stream
 * holds a subscription and buffers, so a flood of followers must get a clear
 * RESOURCE_EXHAUSTED (and go to another server) instead of exhausting memory.
 * Streams served through Connect and through the direct output writer
 * (server/output-lane.ts) take their slots from the same count.
 */
import type { Interceptor } from "@connectrpc/connect";
import { ResourceExhaustedError } from "../queue/errors.js";
import { toConnectError } from "./errors.js";

export interface StreamSlots {
  /** Streams open now. */
  readonly open: number;
  /** Takes a slot, or throws ResourceExhaustedError; call the returned function once when the stream ends. */
  acquire(): () => void;
}

/** At most `max` streams open at once. */
export function createStreamSlots(max: number): StreamSlots {
  let open = 0;
  return {
    get open() {
      return open;
    },
    acquire() {
      if (open >= max) {
        throw new ResourceExhaustedError(`this server already serves ${open} streams, its limit (max_streams=${max}); retry later or use another server`);
      }
      open++;
      let released = false;
      return () => {
        if (!released) {
          released = true;
          open--;
        }
      };
    },
  };
}

/** Refuses a new Connect server stream when every slot is taken. */
export function createStreamLimitInterceptor(slots: StreamSlots): Interceptor {
  return (next) => async (req) => {
    if (req.method.methodKind !== "server_streaming") return next(req);
    let release: () => void;
    try {
      release = slots.acquire();
    } catch (e) {
      // This interceptor runs outside the error mapper: map here.
      throw toConnectError(e);
    }
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
}
