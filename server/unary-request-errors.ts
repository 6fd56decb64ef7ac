/**
 * Connect reads, decompresses and parses a unary request before any
 * interceptor runs, and answers what goes wrong there itself: the error
 * interceptor never sees it, and connect-es calls a body that does not
 * parse INTERNAL (server/request-errors.ts says why). This wraps each unary
 * handler: when a call was answered with an error without reaching the
 * interceptors, the error was raised while reading the request, and is
 * replaced by `explainRequestError`'s, in the reply's own protocol (a
 * Connect JSON error body, gRPC trailers, or a gRPC-Web trailer frame).
 *
 * Why not decode the request here first: every unary call would then be
 * read and parsed twice; this costs nothing unless a call failed.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import {
  createAsyncIterable,
  type UniversalHandler,
  type UniversalServerRequest,
  type UniversalServerResponse,
} from "@connectrpc/connect/protocol";
import { codeToHttpStatus, errorFromJsonBytes, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
import { findTrailerError, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { trailerFlag, trailerParse, trailerSerialize } from "@connectrpc/connect/protocol-grpc-web";
import { reachedInterceptors } from "./context.js";
import { explainRequestError, type RequestFacts } from "./request-errors.js";
import { wrapHandler } from "./wrap-handler.js";

type Explain = (err: ConnectError) => ConnectError;

async function readAll(body: AsyncIterable<Uint8Array> | undefined): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  if (body) for await (const c of body) chunks.push(c);
  return chunks.length === 1 ? (chunks[0] as Uint8Array) : new Uint8Array(Buffer.concat(chunks));
}

/** A fresh error (no metadata of the old reply), so re-encoding writes only what it says. */
function replacement(old: ConnectError, explain: Explain): ConnectError | undefined {
  const next = explain(old);
  if (next.code === old.code && next.rawMessage === old.rawMessage) return undefined;
  return new ConnectError(next.rawMessage, next.code);
}

/** Connect unary: the error is a JSON body with an HTTP status. */
async function rewriteConnect(res: UniversalServerResponse, header: Headers, explain: Explain): Promise<UniversalServerResponse> {
  // A compressed error body (only over compressMinBytes) is left as it is.
  if (header.get("content-encoding")) return res;
  const bytes = await readAll(res.body as AsyncIterable<Uint8Array>);
  const old = errorFromJsonBytes(bytes, undefined, new ConnectError("unreadable error body", Code.Internal));
  const next = replacement(old, explain);
  const body = next ? errorToJsonBytes(next, {}) : bytes;
  if (next) header.set("content-length", String(body.byteLength));
  return { ...res, header, status: next ? codeToHttpStatus(next.code) : res.status, body: createAsyncIterable([body]) };
}

/** gRPC-Web: the status is in a trailer frame at the end of the body. */
async function rewriteGrpcWeb(res: UniversalServerResponse, explain: Explain): Promise<UniversalServerResponse> {
  const bytes = await readAll(res.body as AsyncIterable<Uint8Array>);
  const frames: Uint8Array[] = [];
  for (let at = 0; at + 5 <= bytes.length; ) {
    const flags = bytes[at] as number;
    const len = new DataView(bytes.buffer, bytes.byteOffset + at + 1, 4).getUint32(0);
    let frame = bytes.subarray(at, at + 5 + len);
    if (flags === trailerFlag) {
      const trailer = trailerParse(frame.subarray(5));
      const old = findTrailerError(trailer);
      const next = old && replacement(old, explain);
      if (next) {
        const fresh = new Headers();
        trailer.forEach((v, k) => {
          if (!k.startsWith("grpc-")) fresh.set(k, v);
        });
        const data = trailerSerialize(setTrailerStatus(fresh, next));
        frame = new Uint8Array(5 + data.length);
        frame[0] = trailerFlag;
        new DataView(frame.buffer).setUint32(1, data.length);
        frame.set(data, 5);
      }
    }
    frames.push(frame);
    at += 5 + len;
  }
  return { ...res, body: createAsyncIterable([new Uint8Array(Buffer.concat(frames))]) };
}

/** gRPC: the status is in the trailers, complete by the time a failed unary call returns. */
function rewriteGrpc(res: UniversalServerResponse, explain: Explain): UniversalServerResponse {
  const trailer = res.trailer as Headers;
  const old = findTrailerError(trailer);
  const next = old && replacement(old, explain);
  if (next) {
    trailer.delete("grpc-status-details-bin");
    setTrailerStatus(trailer, next);
  }
  return res;
}

/** `handler` (unary) with errors raised while reading its requests explained. */
export function withUnaryRequestErrors(handler: UniversalHandler): UniversalHandler {
  if (handler.method.methodKind !== "unary") return handler;
  const wrapped = async (req: UniversalServerRequest): Promise<UniversalServerResponse> => {
    const res = await handler(req);
    // Without context values (not created by createConnectOptions) there is no telling; leave the reply.
    if (!req.contextValues || req.contextValues.get(reachedInterceptors)) return res;
    const facts: RequestFacts = { method: handler.method, httpMethod: req.method, url: req.url, contentType: req.header.get("content-type") ?? "" };
    const explain: Explain = (err) => explainRequestError(err, facts);
    const header = new Headers(res.header);
    const type = header.get("content-type") ?? "";
    if (res.trailer) return rewriteGrpc(res, explain);
    if (type.startsWith("application/grpc-web")) return rewriteGrpcWeb(res, explain);
    if (res.status !== 200 && type.startsWith("application/json")) return rewriteConnect(res, header, explain);
    return res;
  };
  return wrapHandler(handler, wrapped);
}
