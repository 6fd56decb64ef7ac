/**
 * The direct writer for output streams: StreamJobOutput, StreamTokens and
 * StreamNarration requests in the Connect protocol with binary messages
 * (what the Node client sends) are served here instead of through Connect's
 * handler pipeline.
 *
 * Why: with a hundred followed steps producing tokens in lockstep (a
 * batching inference server does exactly that), each burst is a hundred
 * one-chunk messages, and Connect spends tens of microseconds of CPU on each
 * (a chain of async-iterable stages, reflective encoding, one write per
 * message). The last follower of a burst waits for all of that. Here each
 * batch of log entries becomes one buffer and one write per stream, and
 * token chunks are encoded by hand.
 *
 * It is the same stream: the same items (server/output-streams.ts), the same
 * stream slots, the same error mapping, the same server interceptors
 * (server/lane-interceptors.ts: they see the call before anything is
 * written, and can refuse it or wrap its messages), and the Connect
 * protocol's own envelope and end-of-stream encoding. Anything else (JSON,
 * gRPC, gRPC-Web, compression, a timeout header, another protocol version)
 * goes to Connect.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { type DescMessage, type DescMethodServerStreaming, fromBinary, type MessageShape, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextValues, type Interceptor } from "@connectrpc/connect";
import { universalRequestFromNodeRequest } from "@connectrpc/connect-node";
import { encodeEnvelope, encodeEnvelopes, transformSplitEnvelope } from "@connectrpc/connect/protocol";
import { contentTypeStreamProto, createEndStreamSerialization, endStreamFlag } from "@connectrpc/connect/protocol-connect";
import { JobService, StreamJobOutputRequestSchema, StreamJobOutputResponseSchema } from "../gen/stepq/v1/job_service_pb.js";
import {
  StepService,
  StreamNarrationRequestSchema,
  StreamNarrationResponseSchema,
  StreamTokensRequestSchema,
  StreamTokensResponseSchema,
} from "../gen/stepq/v1/step_service_pb.js";
import { kStreamOutlet, servedByLane, transportGone } from "./context.js";
import { toConnectError } from "./errors.js";
import { runLaneInterceptors } from "./lane-interceptors.js";
import { type Scope, scopeOf } from "./caller-scope.js";
import { explainRequestError } from "./request-errors.js";
import {
  connectMessages,
  encodeTokensResponse,
  jobOutput,
  type OutputBatches,
  type OutputDeps,
  stepNarration,
  stepTokens,
  type TokensResponseSchema,
} from "./output-streams.js";
import type { StreamSlots } from "./stream-limit.js";
import { outletOf, type StreamOutlet } from "./stream-outlet.js";


type Request = IncomingMessage | Http2ServerRequest;
type Response = ServerResponse | Http2ServerResponse;

interface Route<Req extends DescMessage, Res extends DescMessage> {
  method: DescMethodServerStreaming<Req, Res>;
  request: Req;
  response: Res;
  items(deps: OutputDeps, req: MessageShape<Req>, signal: AbortSignal, scope: Scope, outlet: StreamOutlet): OutputBatches<MessageShape<Res>>;
}

const route = <Req extends DescMessage, Res extends DescMessage>(r: Route<Req, Res>) => r as unknown as Route<DescMessage, DescMessage>;

const ROUTES = new Map<string, Route<DescMessage, DescMessage>>(
  [
    route({ method: JobService.method.streamJobOutput, request: StreamJobOutputRequestSchema, response: StreamJobOutputResponseSchema, items: jobOutput }),
    route({ method: StepService.method.streamTokens, request: StreamTokensRequestSchema, response: StreamTokensResponseSchema, items: stepTokens }),
    route({
      method: StepService.method.streamNarration,
      request: StreamNarrationRequestSchema,
      response: StreamNarrationResponseSchema,
      items: stepNarration,
    }),
  ].map((r) => [`/${r.method.parent.typeName}/${r.method.name}`, r]),
);

const endStream = createEndStreamSerialization(undefined);
/** How long a stalled HTTP/1.1 reader has to take the end of its stream before its connection is closed, ms. */
const STALL_GRACE_MS = 30_000;

export interface OutputLaneOptions {
  slots: StreamSlots;
  /** Largest request message accepted, bytes (the server's --max-request-bytes). */
  readMaxBytes: number;
  /** Logs an unexpected error (the client only learns "internal error"). */
  log(err: Error): void;
  /** The server's interceptors (the same as Connect's): they run for every stream served here. */
  interceptors?: readonly Interceptor[];
}

export interface OutputLane {
  /** Serves the request and returns true if it is one for this lane; false leaves it to Connect. */
  handle(req: Request, res: Response): boolean;
}

export function createOutputLane(deps: OutputDeps, options: OutputLaneOptions): OutputLane {
  return {
    handle(req, res) {
      const r = req.method === "POST" ? ROUTES.get(req.url ?? "") : undefined;
      if (!r || !isPlainConnectProto(req)) return false;
      void serve(r, deps, options, req, res);
      return true;
    },
  };
}

/** Connect protocol, binary, uncompressed, no deadline: the requests this lane serves. */
function isPlainConnectProto(req: Request): boolean {
  const h = req.headers;
  const encoding = h["connect-content-encoding"];
  const version = h["connect-protocol-version"];
  return (
    h["content-type"] === contentTypeStreamProto &&
    (encoding === undefined || encoding === "identity") &&
    (version === undefined || version === "1") &&
    h["connect-timeout-ms"] === undefined
  );
}

async function serve(r: Route<DescMessage, DescMessage>, deps: OutputDeps, o: OutputLaneOptions, req: Request, res: Response): Promise<void> {
  const abort = new AbortController();
  let gone = false;
  res.once("close", () => {
    gone = true;
    abort.abort();
  });
  // The hub drops a stalled reader through this: HTTP/2 resets the stream;
  // HTTP/1.1 ends it with RESOURCE_EXHAUSTED after what the reader has not
  // taken yet, and closes the connection if it still takes nothing.
  const stalled = new AbortController();
  const base = outletOf(req);
  const outlet: StreamOutlet = {
    unsent: (req as Http2ServerRequest).stream ? base.unsent : () => (res as ServerResponse).writableLength,
    abandon(err) {
      if (stalled.signal.aborted || gone) return;
      stalled.abort();
      if ((req as Http2ServerRequest).stream) return base.abandon(err);
      (res as ServerResponse).end(encodeEnvelope(endStreamFlag, endStream.serialize({ metadata: new Headers(), error: toConnectError(err, o.log) })));
      setTimeout(() => res.destroy(), STALL_GRACE_MS).unref();
    },
  };
  let release: (() => void) | undefined;
  let error: ConnectError | undefined;
  let trailer: Headers | undefined;
  let started = false;
  const start = (header?: Headers) => {
    if (started) return;
    started = true;
    const h: Record<string, string> = {};
    header?.forEach((v, k) => (h[k] = v));
    res.writeHead(200, { ...h, "content-type": contentTypeStreamProto });
  };
  try {
    const message = parseRequest(r.request, await readRequestMessage(req, r, o.readMaxBytes));
    let wrapped: AsyncIterable<MessageShape<DescMessage>> | undefined;
    const contextValues = createContextValues().set(transportGone, () => gone).set(kStreamOutlet, outlet).set(servedByLane, true);
    if (o.interceptors && o.interceptors.length > 0) {
      // The stream's messages one by one, only if an interceptor asks for them.
      // Asked for only after the interceptors ran: the scope is the key the auth interceptor left.
      const own = { [Symbol.asyncIterator]: () => connectMessages(r.response, r.items(deps, message, abort.signal, scopeOf(contextValues), outlet)) };
      // The URL (https under TLS) and headers exactly as connect-node gives them to its own interceptors.
      const { url, header } = universalRequestFromNodeRequest(req as IncomingMessage, res as ServerResponse, undefined, undefined);
      const out = await runLaneInterceptors(o.interceptors, {
        method: r.method,
        url,
        header,
        signal: abort.signal,
        contextValues,
        message,
        own,
      });
      start(out.header);
      trailer = out.trailer;
      wrapped = out.wrapped;
    }
    start();
    release = o.slots.acquire();
    // The scope is the key the auth interceptor left (none without auth: every tenant).
    const batches = wrapped ? oneByOne(wrapped) : r.items(deps, message, abort.signal, scopeOf(contextValues), outlet);
    for await (const batch of batches) {
      if (gone || stalled.signal.aborted) break;
      const out = encodeEnvelopes(
        ...batch.map((item) => ({
          flags: 0,
          data: "tokens" in item ? encodeTokensResponse(r.response as TokensResponseSchema, item.job, item.tokens) : toBinary(r.response, item.message),
        })),
      );
      if (!(res as ServerResponse).write(out)) await drained(res, stalled.signal);
    }
  } catch (e) {
    // The client went away mid-stream: nothing is wrong here, and nobody to tell.
    if (!abort.signal.aborted) error = toConnectError(e, o.log);
  } finally {
    release?.();
  }
  if (gone || stalled.signal.aborted) return;
  start();
  (res as ServerResponse).end(encodeEnvelope(endStreamFlag, endStream.serialize({ metadata: trailer ?? new Headers(), error })));
}

/** Messages an interceptor wrapped, as the lane's batches (one message each). */
async function* oneByOne<M>(messages: AsyncIterable<M>): AsyncGenerator<{ message: M }[]> {
  for await (const message of messages) yield [{ message }];
}

/** Resolves once `res` can take more, has closed, or `stop` aborts. */
function drained(res: Response, stop: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      stop.removeEventListener("abort", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
    stop.addEventListener("abort", done);
  });
}

/**
 * The one enveloped message of a server-streaming request, split by
 * Connect's own envelope reader, with Connect's errors for a body that is
 * not exactly one message (a message over the limit is explained as the
 * Connect path explains it).
 */
async function readRequestMessage(req: Request, route: Route<DescMessage, DescMessage>, maxBytes: number): Promise<Uint8Array> {
  let message: Uint8Array | undefined;
  try {
    for await (const envelope of transformSplitEnvelope(maxBytes)(req as AsyncIterable<Uint8Array>)) {
      if (message !== undefined) {
        throw new ConnectError("protocol error: received extra input message for server-streaming method", Code.Unimplemented);
      }
      if (envelope.flags !== 0) {
        const flags = envelope.flags.toString(16).padStart(2, "0");
        throw new ConnectError(
          `protocol error: the request envelope has flags 0x${flags}; send one uncompressed message (flags 0x00), ` +
            "or name its compression in connect-content-encoding",
          Code.InvalidArgument,
        );
      }
      message = envelope.data;
    }
  } catch (e) {
    const err = ConnectError.from(e);
    if (err.code !== Code.ResourceExhausted) throw err;
    const facts = { method: route.method, httpMethod: "POST", url: req.url ?? "", contentType: contentTypeStreamProto };
    throw explainRequestError(err, facts);
  }
  if (message === undefined) throw new ConnectError("protocol error: missing input message for server-streaming method", Code.Unimplemented);
  return message;
}

function parseRequest(schema: DescMessage, bytes: Uint8Array): MessageShape<DescMessage> {
  try {
    return fromBinary(schema, bytes);
  } catch (e) {
    throw new ConnectError(`the request is not a valid ${schema.typeName} in protobuf binary: ${(e as Error).message}`, Code.InvalidArgument);
  }
}
