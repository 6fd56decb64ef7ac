/**
 * Domain errors -> Connect codes, in one place. Handlers throw whatever the
 * queue throws; the error interceptor turns it into a ConnectError here.
 * Unexpected errors become INTERNAL with a generic message; the original is
 * kept as `cause` and logged, never sent to the client.
 */
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { asQueueError, StepqError } from "../queue/errors.js";
import { reachedInterceptors } from "./context.js";
import { explainRequestError, type RequestFacts } from "./request-errors.js";

const CODES: Record<StepqError["kind"], Code> = {
  not_found: Code.NotFound,
  invalid_argument: Code.InvalidArgument,
  failed_precondition: Code.FailedPrecondition,
  already_exists: Code.AlreadyExists,
  resource_exhausted: Code.ResourceExhausted,
  aborted: Code.Aborted,
  unavailable: Code.Unavailable,
  out_of_range: Code.OutOfRange,
};

/** INTERNAL errors already logged, so one that Connect reports again is not logged twice. */
const logged = new WeakSet<Error>();

function logOnce(err: Error, log: (err: Error) => void): void {
  if (logged.has(err)) return;
  logged.add(err);
  log(err);
}

/** The ConnectError to send for `e`. */
export function toConnectError(e: unknown, log: (err: Error) => void = () => {}): ConnectError {
  if (e instanceof ConnectError) {
    // Raised by Connect itself inside the chain: still a server fault to log.
    if (e.code === Code.Internal) logOnce(e.cause instanceof Error ? e.cause : e, log);
    return e;
  }
  const err = asQueueError(e);
  if (err instanceof StepqError) return new ConnectError(err.message, CODES[err.kind], undefined, undefined, err);
  logOnce(err, log);
  const internal = new ConnectError("internal error; the server log has the details", Code.Internal, undefined, undefined, err);
  logged.add(internal);
  return internal;
}

/** Why a stream's signal aborted, if the stream must not end OK because of it. */
function deadlinePassed(signal: AbortSignal): ConnectError | undefined {
  const reason: unknown = signal.aborted ? signal.reason : undefined;
  if (!(reason instanceof ConnectError) || reason.code !== Code.DeadlineExceeded) return undefined;
  return new ConnectError(
    "the stream's deadline passed (the grpc-timeout or connect-timeout-ms the client sent); " +
      "to keep following, open it again with after_cursor set to the cursor of the last message received",
    Code.DeadlineExceeded,
  );
}

async function* mapStreamErrors<T>(stream: AsyncIterable<T>, signal: AbortSignal, log: (err: Error) => void): AsyncIterable<T> {
  try {
    yield* stream;
  } catch (e) {
    const deadline = deadlinePassed(signal);
    if (deadline) throw deadline;
    // The client went away mid-stream: writing failed, nothing is wrong here.
    if (signal.aborted) throw new ConnectError("the client cancelled the stream", Code.Canceled, undefined, undefined, e);
    throw toConnectError(e, log);
  }
  // A handler stops following when its signal aborts; at a deadline that is
  // not the end of the stream, and the client must not read it as one.
  const deadline = deadlinePassed(signal);
  if (deadline) throw deadline;
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
 * Logs INTERNAL errors that Connect raises for this call after the handler
 * ran (encoding or compressing the reply): Connect ends the call with them
 * (aborting its signal with the error) but never shows them to an
 * interceptor.
 */
function logLateInternal(signal: AbortSignal, log: (err: Error) => void): void {
  signal.addEventListener(
    "abort",
    () => {
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
 * request (server/request-errors.ts), and ends a stream whose deadline
 * passed with DEADLINE_EXCEEDED.
 */
export function createErrorInterceptor(log: (err: Error) => void): Interceptor {
  return (next) => async (req) => {
    req.contextValues.set(reachedInterceptors, true);
    logLateInternal(req.signal, log);
    if (req.stream) {
      const facts = { method: req.method, httpMethod: req.requestMethod, url: req.url, contentType: req.header.get("content-type") ?? "" };
      req = { ...req, message: readingRequest(req.message, facts) };
    }
    try {
      const res = await next(req);
      if (res.stream) return { ...res, message: mapStreamErrors(res.message, req.signal, log) };
      return res;
    } catch (e) {
      throw toConnectError(e, log);
    }
  };
}
