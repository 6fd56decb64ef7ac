/**
 * The server's interceptors, run for the streams the output lane
 * (server/output-lane.ts) serves outside Connect's router, so that an
 * interceptor (authentication, metrics, tracing) guards every RPC, not only
 * those Connect dispatches.
 *
 * The chain gets the same StreamRequest Connect would give it: the method,
 * the URL, the request headers, a signal, context values, and the parsed
 * request message. Its innermost `next` returns the lane's own response,
 * whose message iterable produces the stream's messages one by one when
 * iterated. If no interceptor replaced that iterable, the lane never
 * iterates it: it writes its batches itself, as fast as without
 * interceptors. If one did (to count or change messages), the lane writes
 * what the wrapped iterable yields, so the interceptor sees every message.
 * Headers and trailers the interceptors set on the response are sent.
 */
import type { DescMessage, DescMethodServerStreaming, MessageShape } from "@bufbuild/protobuf";
import type { ContextValues, Interceptor, StreamRequest, StreamResponse } from "@connectrpc/connect";

export interface LaneCall<Res extends DescMessage> {
  method: DescMethodServerStreaming;
  url: string;
  header: Headers;
  signal: AbortSignal;
  contextValues: ContextValues;
  /** The parsed request message. */
  message: unknown;
  /** The stream's messages, produced only when iterated. */
  own: AsyncIterable<MessageShape<Res>>;
}

export interface LaneResponse<Res extends DescMessage> {
  header: Headers;
  trailer: Headers;
  /** What to write instead of the lane's own batches; undefined: no interceptor replaced them. */
  wrapped: AsyncIterable<MessageShape<Res>> | undefined;
}

type StreamFn = (req: StreamRequest) => Promise<StreamResponse>;

/** Runs `interceptors` (outermost first) around the lane's response; throws what an interceptor throws. */
export async function runLaneInterceptors<Res extends DescMessage>(
  interceptors: readonly Interceptor[],
  call: LaneCall<Res>,
): Promise<LaneResponse<Res>> {
  const service = call.method.parent;
  const inner: StreamFn = async () => ({
    stream: true,
    service,
    method: call.method,
    header: new Headers(),
    trailer: new Headers(),
    message: call.own as AsyncIterable<never>,
  });
  let next = inner;
  for (const interceptor of [...interceptors].reverse()) next = interceptor(next as never) as unknown as StreamFn;
  const res = await next({
    stream: true,
    service,
    method: call.method,
    requestMethod: "POST",
    url: call.url,
    signal: call.signal,
    header: call.header,
    contextValues: call.contextValues,
    message: (async function* () {
      yield call.message;
    })() as AsyncIterable<never>,
  });
  const message = res.message as AsyncIterable<MessageShape<Res>>;
  return { header: res.header, trailer: res.trailer, wrapped: message === call.own ? undefined : message };
}
