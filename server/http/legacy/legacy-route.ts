/**
 * What every old route shares: the deprecation headers on each answer
 * (errors included), a count of each use (QueueService.ListLegacyUsage), and
 * the two old error shapes:
 *
 * - job-queue style: `{"success": false, "error": "<message>"}`;
 * - worker style: `{"error": {"code": "INVALID_REQUEST", "message": "<message>"}}`;
 *
 * each with the HTTP status of the error's code.
 */
import type { ServerResponse } from "node:http";
import { Code, type ConnectError } from "@connectrpc/connect";
import type { ErrorWriter, HttpResponse, HttpRoute, RouteCall } from "../http-api.js";
import type { InternalTransport } from "../internal-transport.js";
import { deprecationHeaders, type LegacyName } from "./legacy-names.js";

/** Counts one use of an old route (by its name). */
export type RecordUse = (name: string) => Promise<void>;

/** What the old routes need. */
export interface LegacyDeps {
  internal: InternalTransport;
  /** Largest request body (--max-request-bytes). */
  maxBytes: number;
  /** Comment-line interval of idle event streams (--sse-keep-alive). */
  keepAliveMs: number;
  recordUse: RecordUse;
}

function writeJson(res: HttpResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  (res as ServerResponse).writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

/** `{"success": false, "error": message}`. */
export const writeJobQueueError: ErrorWriter = (res, err, status) => writeJson(res, status, { success: false, error: err.rawMessage });

const WORKER_CODES: Partial<Record<Code, string>> = {
  [Code.InvalidArgument]: "INVALID_REQUEST",
  [Code.NotFound]: "NOT_FOUND",
  [Code.Unauthenticated]: "UNAUTHENTICATED",
  [Code.PermissionDenied]: "FORBIDDEN",
  [Code.ResourceExhausted]: "QUEUE_FULL",
  [Code.Unavailable]: "UNAVAILABLE",
};

/** `{"error": {"code", "message"}}`. */
export const writeWorkerError: ErrorWriter = (res, err: ConnectError, status) =>
  writeJson(res, status, { error: { code: status === 405 ? "METHOD_NOT_ALLOWED" : (WORKER_CODES[err.code] ?? "INTERNAL"), message: err.rawMessage } });

/** Answers 200 with `value` as JSON. */
export function replyJson(call: RouteCall, value: unknown, status = 200): void {
  writeJson(call.res, status, value);
}

/** `route`, announcing its deprecation on every answer and counting its uses. */
export function legacyRoute(legacy: LegacyName, recordUse: RecordUse, route: Omit<HttpRoute, "fail"> & { fail: ErrorWriter }): HttpRoute {
  const headers = deprecationHeaders(legacy);
  const announce = (res: HttpResponse) => {
    if (!res.headersSent) for (const [name, value] of Object.entries(headers)) (res as ServerResponse).setHeader(name, value);
  };
  return {
    method: route.method,
    path: route.path,
    fail(res, err, status) {
      announce(res);
      route.fail(res, err, status);
    },
    async handle(call) {
      announce(call.res);
      // A use is counted even when Redis cannot take the count; the request itself will say why it failed.
      await recordUse(legacy.name).catch(() => undefined);
      await route.handle(call);
    },
  };
}
