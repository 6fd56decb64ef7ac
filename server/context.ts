/**
 * Context values shared by the parts around Connect's handlers (see
 * `createConnectOptions`): what one part learns about a request that
 * another needs, in one place.
 */
import { createContextKey } from "@connectrpc/connect";
import type { StreamOutlet } from "./stream-outlet.js";

/**
 * Set by the error interceptor when a call reaches it. Connect reads,
 * decompresses and parses a unary request before any interceptor runs, so an
 * error answered for a call that never got here was raised while reading the
 * request: the request's fault (see server/unary-request-errors.ts).
 */
export const reachedInterceptors = createContextKey(false, { description: "the call reached the interceptors" });

/**
 * Whether the call's connection or HTTP/2 stream is gone (the client reset
 * or closed it). Connect aborts a call's signal with the client's reset code,
 * INTERNAL for a reset with INTERNAL_ERROR or PROTOCOL_ERROR: that is the
 * client's doing, not an error the server answers, so it is not logged as one.
 */
export const transportGone = createContextKey<() => boolean>(() => false, { description: "the call's transport is gone" });

/** The HTTP response a streaming handler writes to (server/stream-outlet.ts), for bounding what it holds unsent. */
export const kStreamOutlet = createContextKey<StreamOutlet | undefined>(undefined, { description: "stepq stream outlet" });

/** Set for the streams the output lane serves itself (server/output-lane.ts), for interceptors and tests that need to tell. */
export const servedByLane = createContextKey(false, { description: "served by the output lane" });
