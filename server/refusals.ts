/**
 * Bodies for the answers Connect gives with none: an unknown path (404), a
 * content type no protocol takes (415), a GET of an RPC that changes state
 * (405). With an empty body, `curl -s` with a typo prints nothing; here each
 * says what exists or what to send instead, in a Connect error body, or in
 * gRPC / gRPC-Web status headers for clients of those protocols (which read
 * no body on an error).
 */
import type { ServerResponse } from "node:http";
import type { Http2ServerResponse } from "node:http2";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { createAsyncIterable, type UniversalHandler, type UniversalServerResponse } from "@connectrpc/connect/protocol";
import { encodeEnvelope } from "@connectrpc/connect/protocol";
import { createEndStreamSerialization, endStreamFlag, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
import type { ConnectNodeAdapterOptions } from "@connectrpc/connect-node";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { HEALTH_PATH } from "./health.js";
import { wrapHandler } from "./wrap-handler.js";

type NodeResponse = ServerResponse | Http2ServerResponse;

const UNARY_TYPES = "application/json or application/proto (Connect), application/grpc[+proto|+json] (gRPC), application/grpc-web[+proto|+json] (gRPC-Web)";
const STREAM_TYPES =
  "application/connect+json or application/connect+proto (Connect), application/grpc[+proto|+json] (gRPC), application/grpc-web[+proto|+json] (gRPC-Web)";

/** The read-only unary RPCs, which also answer GET (Connect GET is for unary calls). */
function getMethods(services: readonly DescService[]): string[] {
  return services.flatMap((s) => s.methods.filter((m) => m.methodKind === "unary" && m.idempotency === 1 /* NO_SIDE_EFFECTS */).map((m) => m.name));
}

/** Edit distance of `a` and `b`, for "did you mean". */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min((row[j] as number) + 1, (next[j - 1] as number) + 1, (row[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length] as number;
}

/** What an unknown path is told: the closest RPC, or what the server serves. */
export function unknownPathMessage(path: string, services: readonly DescService[]): string {
  const rpc = path.split("?")[0]?.replace(/^\//, "") ?? "";
  const all = services.flatMap((s) => s.methods.map((m) => `${s.typeName}/${m.name}`));
  const ranked = all.map((name) => ({ name, d: distance(rpc.toLowerCase(), name.toLowerCase()) })).sort((x, y) => x.d - y.d);
  const best = ranked[0];
  const service = services.find((s) => rpc.startsWith(`${s.typeName}/`));
  if (best && best.d <= Math.max(3, Math.floor(rpc.length / 4))) {
    return `no RPC at /${rpc.slice(0, 200)}; did you mean /${best.name}?`;
  }
  if (service) return `${service.typeName} has no method ${JSON.stringify(rpc.slice(service.typeName.length + 1, 200))}; it has ${service.methods.map((m) => m.name).join(", ")}`;
  return (
    `no RPC at ${JSON.stringify(path.slice(0, 200))}; stepq serves POST /<service>/<method> for ${services.map((s) => s.typeName).join(" and ")} ` +
    `(their methods: ${all.map((n) => n.split("/")[1]).join(", ")}), the dashboard at GET /, server-sent events at ` +
    `GET /v1/steps/{id}/events and /v1/jobs/{id}/events, the OpenAI-compatible /v1/chat/completions, /v1/completions, ` +
    `/v1/embeddings and /v1/models, the event feed at /v1/events/ws, and GET ${HEALTH_PATH}`
  );
}

/** Writes `err` to a Node response in the protocol `contentType` names. */
function writeError(res: NodeResponse, contentType: string, httpStatus: number, err: ConnectError, extra: Record<string, string> = {}): void {
  if (res.headersSent) return void res.end();
  if (contentType.startsWith("application/grpc")) {
    // Trailers-only: gRPC and gRPC-Web clients read the status from the headers.
    const headers = setTrailerStatus(new Headers({ "content-type": contentType.split(";")[0] as string }), err);
    const out: Record<string, string> = { ...extra };
    headers.forEach((v, k) => (out[k] = v));
    (res as ServerResponse).writeHead(200, out);
    res.end();
    return;
  }
  if (contentType.startsWith("application/connect+")) {
    // Connect streaming: a 200 whose body is one end-of-stream message carrying the error.
    const end = encodeEnvelope(endStreamFlag, endStream.serialize({ metadata: new Headers(), error: err }));
    (res as ServerResponse).writeHead(200, { ...extra, "content-type": contentType.split(";")[0] as string, "content-length": String(end.byteLength) });
    res.end(end);
    return;
  }
  const body = errorToJsonBytes(err, {});
  (res as ServerResponse).writeHead(httpStatus, { ...extra, "content-type": "application/json", "content-length": String(body.byteLength) });
  res.end(body);
}

const endStream = createEndStreamSerialization(undefined);

/** Connect's `fallback`: every path that is no RPC gets 404 (gRPC: UNIMPLEMENTED) and a message naming what exists. */
export function createNotFoundFallback(services: readonly DescService[]): NonNullable<ConnectNodeAdapterOptions["fallback"]> {
  return (req, res) => {
    const err = new ConnectError(unknownPathMessage(req.url ?? "", services), Code.Unimplemented);
    writeError(res as NodeResponse, String(req.headers["content-type"] ?? ""), 404, err);
  };
}

/** The message for a 405 (a GET of `method`) or a 415 (`contentType` for `method`). */
function refusalFor(status: number, method: DescMethod, contentType: string, services: readonly DescService[]): ConnectError | undefined {
  const name = `${method.parent.typeName}/${method.name}`;
  if (status === 405) {
    return new ConnectError(
      `${name} takes POST only (it is not read-only); GET works for the read-only RPCs: ${getMethods(services).join(", ")}`,
      Code.Unimplemented,
    );
  }
  if (status === 415) {
    const types = method.methodKind === "unary" ? UNARY_TYPES : STREAM_TYPES;
    return new ConnectError(`content-type ${JSON.stringify(contentType.slice(0, 100))} is not accepted by ${name}; send ${types}`, Code.InvalidArgument);
  }
  return undefined;
}

/** `handler` with a body on its 405 and 415 answers. */
export function withRefusalBodies(handler: UniversalHandler, services: readonly DescService[]): UniversalHandler {
  const wrapped = async (req: Parameters<UniversalHandler>[0]): Promise<UniversalServerResponse> => {
    const res = await handler(req);
    if (res.body !== undefined || (res.status !== 405 && res.status !== 415)) return res;
    const err = refusalFor(res.status, handler.method, req.header.get("content-type") ?? "", services);
    if (!err) return res;
    const body = errorToJsonBytes(err, {});
    const header = new Headers(res.header);
    header.set("content-type", "application/json");
    header.set("content-length", String(body.byteLength));
    if (res.status === 405) header.set("allow", handler.allowedMethods.join(", "));
    return { ...res, header, body: createAsyncIterable([body]) };
  };
  return wrapHandler(handler, wrapped);
}

/**
 * Refuses a request whose declared body is larger than any message the
 * server takes (`maxRequestBytes`, plus one envelope) before Connect reads
 * it, in the request's protocol; returns whether it did. Connect would read
 * until the limit and then drop the request, and with it the connection,
 * while the client is still sending: an HTTP/1.1 client then fails writing
 * and never reads the answer. Here the body is drained instead
 * (server/request-handler.ts), so the client reads why.
 */
export function refuseOversizeBody(req: { headers: Record<string, string | string[] | undefined> }, res: NodeResponse, maxRequestBytes: number): boolean {
  const declared = Number(req.headers["content-length"] ?? NaN);
  if (!Number.isSafeInteger(declared) || declared <= maxRequestBytes + 5) return false;
  const err = new ConnectError(
    `the request message is ${declared} bytes, over this server's limit of ${maxRequestBytes} bytes (--max-request-bytes); ` +
      "send a smaller request (fewer steps per SubmitSteps or SubmitJob call, shorter inputs)",
    Code.ResourceExhausted,
  );
  writeError(res, String(req.headers["content-type"] ?? ""), 429, err);
  return true;
}
