/**
 * The WebSocket feed for monitors, `/v1/events/ws` (with `ws`, the
 * well-kept WebSocket library for Node): the queue's lifecycle events as
 * JSON text messages, filtered, resumable, in either naming style or both.
 *
 *   ws://host/v1/events/ws?routes=echo,infer:m&job_id=J&types=step_failed,job_succeeded
 *                          &after=CURSOR&names=new|legacy|both
 *
 * Each message is `{"cursor", "name", "style", "type", "event"}`: `event` is
 * the contract's JSON of the Event, `type` its EventType (EVENT_TYPE_...), and `name`
 * its name in `style` (server/events/event-names.ts); with names=both an
 * event comes twice, once per name, with the same cursor. A client resumes
 * with `after` = the last cursor it got: nothing lost or repeated.
 *
 * The feed is WatchSteps called through the internal transport, so it
 * takes the same key (Authorization header, or `?access_token=` for
 * browsers), sees only the caller's tenant, counts against --max-streams,
 * and a reader that stops reading is dropped by the stream hub. A browser
 * page of another origin is refused unless --cors-origins lists it (no
 * cross-site WebSocket hijacking). Pings every 30 s end a peer that is gone;
 * the old names sent are counted for ListLegacyUsage.
 */
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { toJson } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { type WebSocket, WebSocketServer } from "ws";
import { EventSchema, type EventType } from "../../gen/stepq/v1/events_pb.js";
import { StepService } from "../../gen/stepq/v1/step_service_pb.js";
import { authorizationOf } from "../http/http-api.js";
import type { InternalTransport } from "../http/internal-transport.js";
import { type NameStyle, namesOf, typeNamed } from "./event-names.js";

export const EVENTS_WS_PATH = "/v1/events/ws";
const PING_MS = 30_000;
/** Bytes a connection may hold unsent before the feed stops reading events for it. */
const MAX_BUFFERED = 1 << 20;
const FLUSH_USES_MS = 5_000;

export interface EventsWsOptions {
  internal: InternalTransport;
  /** Origins allowed besides the server's own (--cors-origins). */
  corsOrigins: readonly string[];
  /** Counts `uses` uses of an old name. */
  recordUse(name: string, uses: number): Promise<void>;
  log(err: Error): void;
}

interface Feed {
  request: { jobId: string; routes: string[]; types: EventType[]; afterCursor: string };
  style: NameStyle;
}

/** The feed a URL asks for; throws INVALID_ARGUMENT naming a bad parameter. */
function feedOf(url: URL): Feed {
  const list = (name: string) => (url.searchParams.get(name) ?? "").split(",").filter((s) => s !== "");
  const style = (url.searchParams.get("names") ?? "new") as NameStyle;
  if (!["new", "legacy", "both"].includes(style)) throw new ConnectError(`names: must be new, legacy or both (got ${JSON.stringify(style)})`, Code.InvalidArgument);
  const types = list("types").map((t) => {
    const type = typeNamed(t);
    if (type === undefined) throw new ConnectError(`types: ${JSON.stringify(t)} is not an event name (step_submitted, step_succeeded, job_failed, ... or EVENT_TYPE_...)`, Code.InvalidArgument);
    return type;
  });
  return { request: { jobId: url.searchParams.get("job_id") ?? "", routes: list("routes"), types, afterCursor: url.searchParams.get("after") ?? "" }, style };
}

/** Whether a page of `origin` may open the feed: no Origin (not a browser), the server's own, or a listed one. */
function originAllowed(req: IncomingMessage, allowed: readonly string[]): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  return allowed.includes(origin) || origin === `http://${req.headers.host}` || origin === `https://${req.headers.host}`;
}

function refuse(socket: Duplex, status: number, message: string): void {
  const body = JSON.stringify({ code: status === 403 ? "permission_denied" : "invalid_argument", message });
  socket.end(`HTTP/1.1 ${status} ${status === 403 ? "Forbidden" : "Bad Request"}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}

/** Sends the feed's events to `ws` until it closes or the stream ends. */
async function pump(ws: WebSocket, req: IncomingMessage, feed: Feed, options: EventsWsOptions, signal: AbortSignal): Promise<void> {
  const authorization = authorizationOf(req, new URL(req.url ?? "/", "http://stepq.local"));
  const uses = new Map<string, number>();
  const flush = () => {
    for (const [name, n] of uses) options.recordUse(`event ${name}`, n).catch(() => undefined);
    uses.clear();
  };
  const flusher = setInterval(flush, FLUSH_USES_MS);
  try {
    const events = createClient(StepService, options.internal.transport).watchSteps(feed.request, options.internal.callOptions(req, signal, authorization));
    for await (const { event } of events) {
      if (!event) continue;
      const json = toJson(EventSchema, event);
      for (const { name, style } of namesOf(event.type, feed.style)) {
        if (style === "legacy") uses.set(name, (uses.get(name) ?? 0) + 1);
        const message = JSON.stringify({ cursor: event.cursor, name, style, type: (json as { type?: string }).type, event: json });
        // Past MAX_BUFFERED unsent, wait until this message is handed to the socket before reading more.
        if (ws.bufferedAmount > MAX_BUFFERED) await new Promise<void>((resolve) => ws.send(message, () => resolve()));
        else ws.send(message);
      }
    }
  } catch (e) {
    const err = ConnectError.from(e);
    if (!signal.aborted && ws.readyState === ws.OPEN) {
      ws.send(JSON.stringify({ error: { code: codeToString(err.code), message: err.rawMessage } }));
      // 1008: policy violation (a key or a role), 1011: the server's trouble, 1003 the request's.
      ws.close(err.code === Code.Unauthenticated || err.code === Code.PermissionDenied ? 1008 : err.code === Code.InvalidArgument || err.code === Code.NotFound ? 1003 : 1011, codeToString(err.code));
    }
  } finally {
    clearInterval(flusher);
    flush();
    if (ws.readyState === ws.OPEN) ws.close(1000, "the feed ended");
  }
}

/** The HTTP server's `upgrade` handler: true if it took the request. */
export function createEventsWs(options: EventsWsOptions): (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 4096, perMessageDeflate: false });
  return (req, socket, head) => {
    const url = new URL(req.url ?? "/", "http://stepq.local");
    if (url.pathname !== EVENTS_WS_PATH) return false;
    if (!originAllowed(req, options.corsOrigins)) {
      refuse(socket, 403, `a page of ${req.headers.origin} may not open the event feed; list its origin in --cors-origins`);
      return true;
    }
    let feed: Feed;
    try {
      feed = feedOf(url);
    } catch (e) {
      refuse(socket, 400, ConnectError.from(e).rawMessage);
      return true;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const stop = new AbortController();
      let alive = true;
      ws.on("pong", () => (alive = true));
      const pinger = setInterval(() => {
        if (!alive) return ws.terminate();
        alive = false;
        ws.ping();
      }, PING_MS);
      ws.on("message", () => ws.close(1003, "the feed takes no messages; filter with the URL's parameters"));
      ws.on("close", () => {
        clearInterval(pinger);
        stop.abort();
      });
      ws.on("error", () => ws.terminate());
      pump(ws, req, feed, options, stop.signal).catch((e: unknown) => options.log(e as Error));
    });
    return true;
  };
}
