/**
 * OpenAI's error shape for the OpenAI-compatible routes:
 * `{"error": {"message", "type", "param", "code"}}` with the status OpenAI
 * gives the kind of error, so an OpenAI SDK raises its matching error class
 * (BadRequestError, AuthenticationError, NotFoundError, RateLimitError...).
 * A bad field is an OpenAiFieldError, whose `param` names it.
 *
 * ConnectError answers `instanceof` for any ConnectError (it checks the
 * shape, to work across copies of the package), subclasses included, so the
 * writer tells these two apart by their `openAi` field, not by instanceof.
 */
import type { ServerResponse } from "node:http";
import { Code, ConnectError } from "@connectrpc/connect";
import type { HttpResponse } from "../http-api.js";

/** A request field OpenAI's API would refuse: 400 invalid_request_error naming `param`. */
export class OpenAiFieldError extends ConnectError {
  readonly openAi = "field";
  constructor(
    readonly param: string,
    message: string,
  ) {
    super(`${param}: ${message}`, Code.InvalidArgument);
  }
}

/** A model no live worker serves: 404 model_not_found, as OpenAI answers an unknown model. */
export class ModelNotFoundError extends ConnectError {
  readonly openAi = "model";
  constructor(readonly model: string) {
    super(`The model '${model}' does not exist: no live worker serves it (GET /v1/models lists those that do)`, Code.NotFound);
  }
}

const TYPE_OF: Partial<Record<Code, [number, string, string | null]>> = {
  [Code.InvalidArgument]: [400, "invalid_request_error", null],
  [Code.OutOfRange]: [400, "invalid_request_error", null],
  [Code.FailedPrecondition]: [400, "invalid_request_error", null],
  [Code.AlreadyExists]: [409, "invalid_request_error", "conflict"],
  [Code.Unauthenticated]: [401, "invalid_request_error", "invalid_api_key"],
  [Code.PermissionDenied]: [403, "invalid_request_error", "permission_denied"],
  [Code.NotFound]: [404, "invalid_request_error", "not_found"],
  [Code.ResourceExhausted]: [429, "requests", "rate_limit_exceeded"],
  [Code.Unavailable]: [503, "server_error", "unavailable"],
  [Code.DeadlineExceeded]: [504, "server_error", "timeout"],
};

/** Writes `err` in OpenAI's shape; `status` (from the route table) is used for a 405 and a 413 only. */
export function writeOpenAiError(res: HttpResponse, err: ConnectError, status: number): void {
  let [code, type, errorCode] = TYPE_OF[err.code] ?? [500, "server_error", null];
  if (status === 405) [code, type, errorCode] = [405, "invalid_request_error", "method_not_allowed"];
  if (status === 413) [code, type, errorCode] = [413, "invalid_request_error", "request_too_large"];
  const kind = (err as Partial<OpenAiFieldError | ModelNotFoundError>).openAi;
  if (kind === "model") errorCode = "model_not_found";
  const param = kind === "field" ? (err as OpenAiFieldError).param : null;
  const body = JSON.stringify({ error: { message: err.rawMessage, type, param, code: errorCode } });
  // A rate limit or a full queue passes soon: say when to try again, as OpenAI does (its SDKs wait that long).
  const retryAfter: Record<string, string> = code === 429 || code === 503 ? { "retry-after": "1" } : {};
  (res as ServerResponse).writeHead(code, { "content-type": "application/json", "content-length": Buffer.byteLength(body), ...retryAfter });
  res.end(body);
}
