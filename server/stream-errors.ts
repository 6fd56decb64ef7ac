/**
 * How a server stream ends, as the error interceptor sees it: its errors
 * mapped, a passed deadline reported as DEADLINE_EXCEEDED instead of a
 * normal end, and a reply message that Connect could not encode reported to
 * the log.
 *
 * A handler stops following when its signal aborts, so at a deadline it
 * simply returns; without a check here the client would read that as the
 * stream's normal end (OK). And Connect encodes each message after this
 * point: when that fails it stops reading the stream and answers INTERNAL,
 * telling no interceptor; the stream sees only that it was stopped early.
 */
import { type DescMessage, type MessageShape, toBinary, toJson } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";

export interface StreamEnd {
  /** The call's signal. */
  signal: AbortSignal;
  /** Whether the client reset or closed the call. */
  gone(): boolean;
  /** The stream's message type. */
  output: DescMessage;
  /** The error to send for an error the handler threw. */
  map(e: unknown): ConnectError;
  /** Logs a server fault. */
  report(err: Error): void;
}

/** DEADLINE_EXCEEDED if the call's signal aborted because its deadline passed. */
export function deadlinePassed(signal: AbortSignal): ConnectError | undefined {
  const reason: unknown = signal.aborted ? signal.reason : undefined;
  if (!(reason instanceof ConnectError) || reason.code !== Code.DeadlineExceeded) return undefined;
  return new ConnectError(
    "the stream's deadline passed (the grpc-timeout or connect-timeout-ms the client sent); " +
      "to keep following, open it again with after_cursor set to the cursor of the last message received",
    Code.DeadlineExceeded,
  );
}

/** Why `message` could not be sent: encoding it again gives the error Connect got. */
function encodingError(output: DescMessage, message: unknown): Error {
  const encoders = [(m: MessageShape<DescMessage>) => toBinary(output, m), (m: MessageShape<DescMessage>) => toJson(output, m)];
  for (const encode of encoders) {
    try {
      encode(message as MessageShape<DescMessage>);
    } catch (e) {
      return new Error(`a ${output.typeName} reply could not be encoded (the client got INTERNAL): ${(e as Error).message}`, { cause: e });
    }
  }
  return new Error(`a ${output.typeName} reply stream was stopped by Connect after the handler (the client got INTERNAL)`);
}

/** `stream` as the client should see it end. */
export async function* mapStreamErrors<T>(stream: AsyncIterable<T>, end: StreamEnd): AsyncIterable<T> {
  let last: T | undefined;
  let settled = false;
  try {
    for await (const m of stream) {
      last = m;
      yield m;
    }
    settled = true;
  } catch (e) {
    settled = true;
    const deadline = deadlinePassed(end.signal);
    if (deadline) throw deadline;
    // The client went away mid-stream: writing failed, nothing is wrong here.
    if (end.signal.aborted) throw new ConnectError("the client cancelled the stream", Code.Canceled, undefined, undefined, e);
    throw end.map(e);
  } finally {
    // Stopped early while the client is still there: Connect failed to send what we yielded.
    if (!settled && !end.gone()) end.report(encodingError(end.output, last));
  }
  const deadline = deadlinePassed(end.signal);
  if (deadline) throw deadline;
}
