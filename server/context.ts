/**
 * Context keys of the Connect handlers, in one place: values that
 * connectNodeAdapter attaches to each request for the handlers to read.
 */
import { createContextKey } from "@connectrpc/connect";
import type { StreamOutlet } from "./stream-outlet.js";

/** The HTTP response a streaming handler writes to (server/stream-outlet.ts). */
export const kStreamOutlet = createContextKey<StreamOutlet | undefined>(undefined, { description: "stepq stream outlet" });
