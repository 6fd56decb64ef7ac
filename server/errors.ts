/**
 * Domain errors -> Connect codes, in one place. Handlers throw whatever the
 * queue throws; the error interceptor turns it into a ConnectError here.
 * Unexpected errors become INTERNAL with a generic message; the original is
 * kept as `cause` and logged, never sent to the client.
 */
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { asQueueError, StepqError } from "../queue/errors.js";

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

/** The ConnectError to send for `e`. */
export function toConnectError(e: unknown, log: (err: Error) => void = () => {}): ConnectError {
  if (e instanceof ConnectError) return e;
  const err = asQueueError(e);
  if (err instanceof StepqError) return new ConnectError(err.message, CODES[err.kind], undefined, undefined, err);
  log(err);
  return new ConnectError("internal error; the server log has the details", Code.Internal, undefined, undefined, err);
}

async function* mapStreamErrors<T>(stream: AsyncIterable<T>, signal: AbortSignal, log: (err: Error) => void): AsyncIterable<T> {
  try {
    yield* stream;
  } catch (e) {
    // The client went away mid-stream: writing failed, nothing is wrong here.
    if (signal.aborted) throw new ConnectError("the client cancelled the stream", Code.Canceled, undefined, undefined, e);
    throw toConnectError(e, log);
  }
}

/**
 * Maps errors of every handler (unary and streaming) to Connect codes. It
 * must run closest to the handler, so that other interceptors see Connect
 * errors only.
 */
export function createErrorInterceptor(log: (err: Error) => void): Interceptor {
  return (next) => async (req) => {
    try {
      const res = await next(req);
      if (res.stream) return { ...res, message: mapStreamErrors(res.message, req.signal, log) };
      return res;
    } catch (e) {
      throw toConnectError(e, log);
    }
  };
}
