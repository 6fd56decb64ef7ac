/**
 * Domain errors -> Connect codes, in one place. Handlers throw whatever the
 * queue throws; the error interceptor turns it into a ConnectError here.
 * Unexpected errors become INTERNAL with a generic message; the original is
 * kept as `cause` and logged, never sent to the client.
 */
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { asQueueError, StepqError } from "../queue/errors.js";
import { reachedInterceptors, transportGone } from "./context.js";
import { explainRequestError, type RequestFacts } from "./request-errors.js";
import { mapStreamErrors } from "./stream-errors.js";

const CODES: Record<StepqError["kind"], Code> = {
  not_found: Code.NotFound,
  invalid_argument: Code.InvalidArgument,
  failed_precondition: Code.FailedPrecondition,
  already_exists: Code.AlreadyExists,
  resource_exhausted: Code.ResourceExhausted,
  aborted: Code.Aborted,
  unavailable: Code.Unavailable,
  out_of_range: Code.OutOfRange,
  data_loss: Code.DataLoss,
};

/** INTERNAL errors already logged, so one that Connect reports again is not logged twice. */
const logged = new WeakSet<Error>();

function logOnce(err: Error, log: (err: Error) => void): void {
  if (logged.has(err)) return;
  logged.add(err);
  log(err);
}

/**
 * Longest error message sent. gRPC and gRPC-Web carry it in a header, and a
 * message quoting a 170 KB field a client sent made a header block larger
 * than HTTP/2 takes: the stream was reset instead of answered.
 */
export const MAX_ERROR_MESSAGE = 1000;

/** `err` with its message cut to MAX_ERROR_MESSAGE characters (itself when it fits). */
export function boundedError(err: ConnectError): ConnectError {
  if (err.rawMessage.length <= MAX_ERROR_MESSAGE) return err;
  const cut = `${err.rawMessage.slice(0, MAX_ERROR_MESSAGE)}… (message cut at ${MAX_ERROR_MESSAGE} characters)`;
  return new ConnectError(cut, err.code, err.metadata, err.details as ConstructorParameters<typeof ConnectError>[3], err.cause);
}

/** The ConnectError to send for `e`. */
export function toConnectError(e: unknown, log: (err: Error) => void = () => {}): ConnectError {
  if (e instanceof ConnectError) {
    // Raised by Connect itself inside the chain: still a server fault to log.
    if (e.code === Code.Internal) logOnce(e.cause instanceof Error ? e.cause : e, log);
    return boundedError(e);
  }
  const err = asQueueError(e);
  if (err instanceof StepqError) return boundedError(new ConnectError(err.message, CODES[err.kind], undefined, undefined, err));
  logOnce(err, log);
  const internal = new ConnectError("internal error; the server log has the details", Code.Internal, undefined, undefined, err);
  logged.add(internal);
  return internal;
}

/** The request messages of a stream, with errors raised while reading them explained. */
async function* readingRequest<T>(messages: AsyncIterable<T>, facts: RequestFacts): AsyncIterable<T> {
  try {
    yield* messages;
  } catch (e) {
    throw explainRequestError(e, facts);
  }
}

/**
 * Logs INTERNAL errors that Connect raises for a unary call after the
 * handler ran (encoding the reply): Connect ends the call with them
 * (aborting its signal with the error) but never shows them to an
 * interceptor. Aborts caused by the client (a reset, a closed connection)
 * are not server faults and are not logged. (Streams: server/stream-errors.ts.)
 */
function logLateInternal(signal: AbortSignal, gone: () => boolean, log: (err: Error) => void): void {
  signal.addEventListener(
    "abort",
    () => {
      // The client reset or closed the call: nothing is answered, nothing is wrong here.
      if (gone()) return;
      const r: unknown = signal.reason;
      if (r instanceof ConnectError) {
        if (r.code === Code.Internal && !logged.has(r)) logOnce(r.cause instanceof Error ? r.cause : r, log);
      } else if (r instanceof Error && r.name !== "AbortError") {
        logOnce(r, log);
      }
    },
    { once: true },
  );
}

/**
 * Maps errors of every handler (unary and streaming) to Connect codes. It
 * must run closest to the handler, so that other interceptors see Connect
 * errors only. It also marks the call as having reached the interceptors
 * (server/unary-request-errors.ts), explains errors in reading a stream's
 * request (server/request-errors.ts), and ends streams as the client must
 * see them end (server/stream-errors.ts).
 */
export function createErrorInterceptor(log: (err: Error) => void): Interceptor {
  return (next) => async (req) => {
    req.contextValues.set(reachedInterceptors, true);
    const gone = req.contextValues.get(transportGone);
    if (req.stream) {
      const facts = { method: req.method, httpMethod: req.requestMethod, url: req.url, contentType: req.header.get("content-type") ?? "" };
      req = { ...req, message: readingRequest(req.message, facts) };
    } else {
      logLateInternal(req.signal, gone, log);
    }
    try {
      const res = await next(req);
      if (!res.stream) return res;
      const end = { signal: req.signal, gone, output: req.method.output, map: (e: unknown) => toConnectError(e, log), report: (err: Error) => logOnce(err, log) };
      return { ...res, message: mapStreamErrors(res.message, end) };
    } catch (e) {
      throw toConnectError(e, log);
    }
  };
}
