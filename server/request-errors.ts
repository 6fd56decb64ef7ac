/**
 * What a client gets when Connect cannot read its request: the bytes are
 * not the request message, a compressed flag names no compression, a GET's
 * base64 does not decode, the request is over the size limit.
 *
 * connect-es raises some of these as INTERNAL: its parser is shared with its
 * clients, where a message that does not parse is the server's fault (the
 * Connect conformance suite wants INTERNAL there). On the server side, bytes
 * that do not decode are always the request's fault, so whatever goes wrong
 * while reading a request is INVALID_ARGUMENT (a size limit stays
 * RESOURCE_EXHAUSTED), with a message that says what was wrong and what to
 * send instead. Connect's own text only picks the advice; the code does not
 * depend on it.
 */
import type { DescMethod } from "@bufbuild/protobuf";
import { base64Decode } from "@bufbuild/protobuf/wire";
import { Code, ConnectError } from "@connectrpc/connect";

/** The request whose reading failed. */
export interface RequestFacts {
  method: DescMethod;
  /** HTTP method: GET requests carry the message in the query. */
  httpMethod: string;
  url: string;
  contentType: string;
}

/** How this request's protocol names compression and JSON. */
function wireOf(req: RequestFacts): { encoding: string; json: string } {
  if (req.httpMethod === "GET") return { encoding: "the compression query parameter", json: "as JSON with encoding=json" };
  const ct = req.contentType.toLowerCase();
  if (ct.startsWith("application/grpc-web")) return { encoding: "grpc-encoding: gzip (or br)", json: "as JSON with content-type application/grpc-web+json" };
  if (ct.startsWith("application/grpc")) return { encoding: "grpc-encoding: gzip (or br)", json: "as JSON with content-type application/grpc+json" };
  if (ct.startsWith("application/connect+")) return { encoding: "connect-content-encoding: gzip (or br)", json: "as JSON with content-type application/connect+json" };
  return { encoding: "content-encoding: gzip (or br)", json: "as JSON with content-type application/json" };
}

function invalid(message: string, cause: unknown): ConnectError {
  return new ConnectError(message, Code.InvalidArgument, undefined, undefined, cause);
}

/** A GET's `message` parameter, if it is what is wrong. */
function badQuery(req: RequestFacts): string | undefined {
  if (req.httpMethod !== "GET") return undefined;
  const q = new URL(req.url).searchParams;
  if (q.get("base64") !== "1") return undefined;
  try {
    base64Decode(q.get("message") ?? "");
    return undefined;
  } catch {
    return "message: is not valid base64 (base64=1 says it is); encode the binary request with URL-safe base64, or send it as JSON with encoding=json and without base64";
  }
}

function overLimit(err: ConnectError): ConnectError | undefined {
  const limit = /readMaxBytes (\d+)/.exec(err.rawMessage)?.[1];
  if (limit === undefined) return undefined;
  const size = /message size (\d+)/.exec(err.rawMessage)?.[1];
  const what = size !== undefined ? `is ${size} bytes,` : /decompression/.test(err.rawMessage) ? "is, once decompressed," : "is";
  return new ConnectError(
    `the request message ${what} over this server's limit of ${limit} bytes (--max-request-bytes); ` +
      "send a smaller request (fewer steps per SubmitSteps or SubmitJob call, shorter inputs)",
    Code.ResourceExhausted,
    undefined,
    undefined,
    err,
  );
}

/**
 * The error to send for `e`, raised by Connect while it read, decompressed
 * or parsed the request `req` (before any handler ran).
 */
export function explainRequestError(e: unknown, req: RequestFacts): ConnectError {
  const err = ConnectError.from(e);
  if (err.code === Code.ResourceExhausted) return overLimit(err) ?? err;
  const type = req.method.input.typeName;
  const wire = wireOf(req);
  const raw = err.rawMessage;
  if (err.code === Code.InvalidArgument) {
    const connectTimeout = /invalid connect timeout value: (.*)$/s.exec(raw);
    if (connectTimeout) {
      return invalid(`connect-timeout-ms: ${JSON.stringify(connectTimeout[1]?.slice(0, 40))} is not a timeout; send the deadline in milliseconds, 1 to 10 digits`, err);
    }
    const grpcTimeout = /invalid grpc timeout value: (.*)$/s.exec(raw);
    if (grpcTimeout) {
      return invalid(
        `grpc-timeout: ${JSON.stringify(grpcTimeout[1]?.slice(0, 40))} is not a timeout; send 1 to 8 digits and a unit (H, M, S, m, u or n), e.g. 500m`,
        err,
      );
    }
    if (/incomplete envelope/.test(raw)) {
      return invalid("the request ends inside a message: its 5-byte envelope header promised more bytes than were sent; send each message whole", err);
    }
    return err;
  }
  if (err.code !== Code.Internal) return err;
  const query = badQuery(req);
  if (query) return invalid(query, err);
  const parse = /^parse binary: (.*)$/s.exec(raw);
  if (parse) {
    return invalid(`the request is not a valid ${type} in protobuf binary (${parse[1]}); send ${type} serialized with protobuf, or ${wire.json}`, err);
  }
  if (/compressed envelope/.test(raw)) {
    return invalid(
      `a request message has the compressed flag set, but the request names no compression; send ${wire.encoding} with compressed messages, or clear the flag (first byte 0)`,
      err,
    );
  }
  return invalid(`the request could not be read as ${type} (${raw}); check that the body matches its content-type and encoding`, err);
}
