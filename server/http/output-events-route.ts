/**
 * Server-sent events of a step's or a job's output, for curl -N and a
 * browser's EventSource:
 *
 *   GET /v1/steps/{stepId}/events    one step: token, narration, state, end
 *   GET /v1/jobs/{jobId}/events      every step of the job, then the job's end
 *
 * Each event's `id:` is its cursor in the job's log; a reconnect with
 * Last-Event-ID (EventSource sends it by itself) or `?after=CURSOR` resumes
 * after it, nothing lost or repeated. Its data is the contract's JSON of the
 * message (StreamJobOutput's TokenChunk, Narration, StepRestart, StepEnd,
 * JobEnd), with `type` added to state events (snapshot, restart, step_end). A step's stream starts with a
 * `state` event (no id) saying where it stands. Once the end was sent, a
 * reconnect after it is answered 204, which tells EventSource to stop.
 *
 * The stream is JobService.StreamJobOutput, called through the internal
 * transport: the same authentication, stream slots, byte bounds and stall
 * timeout as the RPC, and the same errors, as Connect-style JSON with the
 * matching HTTP status before the stream starts or as an `error` event after.
 */
import type { ServerResponse } from "node:http";
import { type DescMessage, type MessageShape, toJson } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { JobService, type StreamJobOutputResponse } from "../../gen/stepq/v1/job_service_pb.js";
import { JobEndSchema } from "../../gen/stepq/v1/job_service_pb.js";
import { NarrationSchema, StepEndSchema, StepRestartSchema, TokenChunkSchema } from "../../gen/stepq/v1/output_pb.js";
import { StepSchema } from "../../gen/stepq/v1/step_pb.js";
import { StepService } from "../../gen/stepq/v1/step_service_pb.js";
import type { HttpRoute, RouteCall } from "./http-api.js";
import type { InternalTransport } from "./internal-transport.js";
import { startSse } from "./sse-response.js";
import { writeJsonError } from "./json-error.js";

/** How long the first message may take before the stream opens without it. */
const FIRST_MESSAGE_WAIT_MS = 100;

const json = <D extends DescMessage>(schema: D, message: MessageShape<D>) => toJson(schema, message) as Record<string, unknown>;

/** The SSE event for one message of the stream; `oneStep`: a step's stream, which its end ends. */
function eventOf(res: StreamJobOutputResponse, oneStep: boolean): { event: string; data: unknown; cursor: string } | undefined {
  const e = res.event;
  switch (e.case) {
    case "tokens":
      return { event: "token", data: json(TokenChunkSchema, e.value), cursor: e.value.cursor };
    case "narration":
      return { event: "narration", data: json(NarrationSchema, e.value), cursor: e.value.cursor };
    case "restart":
      return { event: "state", data: { type: "restart", ...json(StepRestartSchema, e.value) }, cursor: e.value.cursor };
    case "stepEnd":
      if (oneStep) return { event: "end", data: json(StepEndSchema, e.value), cursor: e.value.cursor };
      return { event: "state", data: { type: "step_end", ...json(StepEndSchema, e.value) }, cursor: e.value.cursor };
    case "jobEnd":
      return { event: "end", data: json(JobEndSchema, e.value), cursor: e.value.cursor };
    default:
      return undefined;
  }
}

/** Streams the job's output (one step's, with `stepId`) as SSE. */
async function streamEvents(call: RouteCall, internal: InternalTransport, keepAliveMs: number, jobId: string, stepId: string | undefined): Promise<void> {
  const after = call.url.searchParams.get("after") ?? (call.req.headers["last-event-id"] as string | undefined) ?? "";
  let snapshot: Record<string, unknown> | undefined;
  if (stepId !== undefined) {
    const { step } = await createClient(StepService, internal.transport).getStep({ stepId }, call.callOptions());
    if (step) snapshot = { type: "snapshot", ...json(StepSchema, { ...step, result: undefined }) };
  }
  const stream = createClient(JobService, internal.transport).streamJobOutput({ jobId, afterCursor: after, stepId }, call.callOptions());
  const it = stream[Symbol.asyncIterator]();
  let first: Promise<IteratorResult<StreamJobOutputResponse>> | undefined = it.next();
  const early = await Promise.race([first, new Promise<undefined>((r) => setTimeout(() => r(undefined), FIRST_MESSAGE_WAIT_MS))]);
  if (early?.done) {
    // Resumed after the end (the RPC ends such a stream at once): 204 tells EventSource to stop.
    (call.res as ServerResponse).writeHead(204).end();
    return;
  }
  const sse = startSse(call.res, keepAliveMs);
  try {
    if (snapshot && after === "") await sse.send("state", snapshot);
    for (;;) {
      const next = await (first ?? it.next());
      first = undefined;
      if (next.done) break;
      const ev = eventOf(next.value, stepId !== undefined);
      if (ev) await sse.send(ev.event, ev.data, ev.cursor);
    }
  } catch (e) {
    const err = ConnectError.from(e);
    if (err.code !== Code.Canceled || !call.signal.aborted) await sse.send("error", { code: Code[err.code], message: err.rawMessage });
  } finally {
    await it.return?.();
    sse.end();
  }
}

/** The two event routes. */
export function outputEventRoutes(internal: InternalTransport, keepAliveMs: number): HttpRoute[] {
  return [
    {
      method: "GET",
      path: /^\/v1\/steps\/([^/]+)\/events$/,
      fail: writeJsonError,
      handle: (call) => {
        const stepId = call.params[0] as string;
        return streamEvents(call, internal, keepAliveMs, stepId.split(".")[0] as string, stepId);
      },
    },
    {
      method: "GET",
      path: /^\/v1\/jobs\/([^/]+)\/events$/,
      fail: writeJsonError,
      handle: (call) => streamEvents(call, internal, keepAliveMs, call.params[0] as string, undefined),
    },
  ];
}
