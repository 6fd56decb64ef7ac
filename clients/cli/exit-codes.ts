/**
 * Exit codes of the `stepq` command, so scripts can tell outcomes apart.
 */
import { Code, ConnectError } from "@connectrpc/connect";

export const EXIT = {
  /** Success (for follow/submit --follow: the step succeeded). */
  OK: 0,
  /** The step failed or was cancelled, or an unexpected error. */
  FAILED: 1,
  /** Bad usage: unknown command or flag, bad value. */
  USAGE: 2,
  /** The server (or Redis behind it) is unreachable. */
  UNAVAILABLE: 3,
  /** The step or job does not exist. */
  NOT_FOUND: 4,
  /** The server rejected the request (invalid argument, precondition, limit). */
  REJECTED: 5,
} as const;

/** The exit code and one-line message for an error raised by a client call. */
export function describeClientError(e: unknown, server: string): { code: number; message: string } {
  const err = ConnectError.from(e);
  switch (err.code) {
    case Code.Unavailable:
    case Code.Unknown:
      if (/ECONNREFUSED|fetch failed|connect/i.test(err.rawMessage)) {
        return { code: EXIT.UNAVAILABLE, message: `cannot reach the stepq server at ${server} (is "stepq dev" or "stepq serve" running? set --server or STEPQ_SERVER)` };
      }
      return { code: EXIT.UNAVAILABLE, message: err.rawMessage };
    case Code.NotFound:
      return { code: EXIT.NOT_FOUND, message: err.rawMessage };
    case Code.InvalidArgument:
    case Code.FailedPrecondition:
    case Code.ResourceExhausted:
    case Code.AlreadyExists:
    case Code.OutOfRange:
      return { code: EXIT.REJECTED, message: err.rawMessage };
    case Code.Unauthenticated:
      return { code: EXIT.REJECTED, message: `${err.rawMessage} (give an API key with --api-key or STEPQ_API_KEY)` };
    case Code.PermissionDenied:
      return { code: EXIT.REJECTED, message: err.rawMessage };
    default:
      return { code: EXIT.FAILED, message: `${Code[err.code]}: ${err.rawMessage}` };
  }
}
