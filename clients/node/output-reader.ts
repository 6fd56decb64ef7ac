/**
 * Reads StreamJobOutput in the Connect protocol with binary messages,
 * straight from connect-node's HTTP client (HTTP/1.1 or HTTP/2): the
 * response body is split into messages here, without the generated
 * client's per-message pipeline. follow() uses it when the client speaks
 * Connect over its default transport, because a follower of a busy step
 * receives many small messages and each one's cost adds to the latency of
 * the next. Errors are the generated client's: HTTP failures, the server's
 * end-of-stream error and broken connections arrive as ConnectErrors with
 * the same codes.
 */
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { encodeEnvelope, transformSplitEnvelope, type UniversalClientFn } from "@connectrpc/connect/protocol";
import { contentTypeStreamProto, endStreamFlag, endStreamFromJson, validateResponse } from "@connectrpc/connect/protocol-connect";
import { StreamJobOutputRequestSchema, type StreamJobOutputResponse, StreamJobOutputResponseSchema } from "../../gen/stepq/v1/job_service_pb.js";
import type { OpenJobOutput } from "../shared/follow.js";

const PATH = "/stepq.v1.JobService/StreamJobOutput";

export type { OpenJobOutput };
/** What StreamJobOutput is asked: the job, where to resume, and optionally one step of it. */
type JobOutputRequest = Parameters<OpenJobOutput>[0];

/** A reader for the server at `baseUrl`, over `http` (connect-node's createNodeHttpClient). */
export function createOutputReader(baseUrl: string, http: UniversalClientFn, apiKey?: string): OpenJobOutput {
  const url = baseUrl.replace(/\/+$/, "") + PATH;
  const header = () => {
    const h = new Headers({ "content-type": contentTypeStreamProto, "connect-protocol-version": "1" });
    if (apiKey) h.set("authorization", `Bearer ${apiKey}`);
    return h;
  };
  return (req, signal) => read(http, url, header(), req, signal);
}

async function* read(
  http: UniversalClientFn,
  url: string,
  header: Headers,
  req: JobOutputRequest,
  signal: AbortSignal,
): AsyncGenerator<StreamJobOutputResponse> {
  const body = encodeEnvelope(0, toBinary(StreamJobOutputRequestSchema, { $typeName: StreamJobOutputRequestSchema.typeName, stepId: "", ...req }));
  const res = await http({
    url,
    method: "POST",
    header,
    body: (async function* () {
      yield body;
    })(),
    signal,
  });
  validateResponse("server_streaming", true, res.status, res.header);
  // Connect's own envelope splitter: a hand-written one was 0.4 µs per message faster (0.23 against
  // 0.64 µs, 100,000 40-byte envelopes in 1-16 KB chunks), under 1% of the ~50 µs this client spends
  // per streamed message: not a reason to keep our own.
  for await (const { flags, data } of envelopes(res.body)) {
    if ((flags & endStreamFlag) === endStreamFlag) {
      const end = endStreamFromJson(data);
      if (end.error) throw end.error;
      return;
    }
    if (flags !== 0) throw new ConnectError(`protocol error: unexpected envelope flags 0x${flags.toString(16)}`, Code.Internal);
    yield fromBinary(StreamJobOutputResponseSchema, data);
  }
  throw cut();
}

const cut = () => new ConnectError("protocol error: the stream ended without its end message (connection cut?)", Code.Unavailable);

/** The body's envelopes; a body that ends inside one was cut (UNAVAILABLE, so follow() reconnects), not malformed. */
async function* envelopes(body: AsyncIterable<Uint8Array>): AsyncGenerator<{ flags: number; data: Uint8Array }> {
  try {
    yield* transformSplitEnvelope(0xffffffff)(body);
  } catch (e) {
    if (e instanceof ConnectError && e.rawMessage === "protocol error: incomplete envelope") throw cut();
    throw e;
  }
}
