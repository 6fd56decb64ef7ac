/**
 * The inference worker system's routes, on stepq steps (its "job" is one
 * operation, so a stepq step; see docs/migration.md):
 *
 *   POST   /v1/jobs              {"operation": "infer", "model", "prompt", ...}
 *                                -> {job_id, sse_url: "/v1/jobs/{job_id}/stream"}
 *   GET    /v1/jobs/{id}/stream  server-sent events, `data:` lines only:
 *                                {"type": "token", "t", "i"}, {"type": "narration", "human", "level"},
 *                                {"type": "end", "tokens_out", "decode_time_ms", "stop_reason"}, then
 *                                [DONE]; a failed step {"type": "error", "code", "message"} then
 *                                [ERROR] <message>; a cancelled one [CANCELLED]
 *   DELETE /v1/jobs/{id}         cancels -> {job_id, status: "cancelled"}
 *   POST   /v1/inference, GET /v1/inference/{id}/stream: the older aliases
 *
 * Each event also has an `id:`, so a client that reconnects with
 * Last-Event-ID resumes without a gap or a repeat, which the old system
 * could not do. Tokens come in chunks, one cursor each, and go out one event
 * each: the last token of a chunk has the chunk's cursor as its id, the
 * others `<cursor>#<k>` (resumeFrom reads both). Its stream is StreamJobOutput's, so it has the
 * same limits, keys and stall timeout.
 */
import type { JsonObject } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { JobService } from "../../../gen/stepq/v1/job_service_pb.js";
import { previousStreamId } from "../../../queue/log-entry.js";
import { NarrationLevel, type StepEnd } from "../../../gen/stepq/v1/output_pb.js";
import { StepErrorCode, StepState, StopReason } from "../../../gen/stepq/v1/step_pb.js";
import { StepService } from "../../../gen/stepq/v1/step_service_pb.js";
import type { HttpRoute, RouteCall } from "../http-api.js";
import type { InternalTransport } from "../internal-transport.js";
import { readJsonObject } from "../read-json-body.js";
import { startSse } from "../sse-response.js";
import { workerOperation } from "./legacy-operation.js";
import { LEGACY_ROUTES, type LegacyName } from "./legacy-names.js";
import { type LegacyDeps, legacyRoute, replyJson, writeWorkerError } from "./legacy-route.js";

const STOP_REASONS: Record<number, string> = {
  [StopReason.END_OF_TEXT]: "end_of_text",
  [StopReason.MAX_TOKENS]: "max_tokens",
  [StopReason.STOP_SEQUENCE]: "stop_sequence",
};

/** The old system's error codes for stepq's step error codes (INFERENCE_FAILED for the others). */
const ERROR_CODES: Partial<Record<StepErrorCode, string>> = {
  [StepErrorCode.TIMEOUT]: "TIMEOUT",
  [StepErrorCode.QUEUE_TIMEOUT]: "TIMEOUT",
  [StepErrorCode.INVALID_OPERATION]: "INVALID_REQUEST",
};

async function submit(call: RouteCall, internal: InternalTransport, maxBytes: number, base: string): Promise<void> {
  const body = (await readJsonObject(call.req, maxBytes)) as JsonObject;
  const { step } = await createClient(StepService, internal.transport).submitStep(
    { operation: workerOperation(body), labels: { api: `legacy.${base.slice(1).replace(/\//g, ".")}` } },
    call.callOptions(),
  );
  if (!step) throw new ConnectError("SubmitStep returned no step", Code.Internal);
  replyJson(call, { job_id: step.id, sse_url: `${base}/${step.id}/stream` });
}

function endEvents(end: StepEnd): string[] {
  if (end.state === StepState.SUCCEEDED) {
    const u = end.usage;
    const summary = { type: "end", tokens_out: u?.completionTokens ?? 0, decode_time_ms: u?.durationMs ?? 0, stop_reason: STOP_REASONS[end.stopReason] ?? "unknown" };
    return [JSON.stringify(summary), "[DONE]"];
  }
  if (end.state === StepState.CANCELLED) return ["[CANCELLED]"];
  const message = end.error?.message ?? "the step failed";
  const code = (end.error && ERROR_CODES[end.error.code]) ?? "INFERENCE_FAILED";
  return [JSON.stringify({ type: "error", code, message }), `[ERROR] ${message}`];
}

/** The id of token `k` of a chunk of `n` at `cursor`. */
const tokenId = (cursor: string, k: number, n: number) => (k === n - 1 ? cursor : `${cursor}#${k}`);

/**
 * Where to resume after event id `id`: a chunk's cursor resumes after it; a
 * token inside a chunk (`<cursor>#<k>`) resumes from that chunk (after the
 * stream id just before it: stream ids grow strictly, so none lies between),
 * skipping its first k + 1 tokens.
 */
function resumeFrom(id: string): { after: string; chunk?: string; skip: number } {
  const m = /^(\d+)-(\d+)#(\d+)$/.exec(id);
  if (!m) return { after: id, skip: 0 };
  const chunk = `${m[1]}-${m[2]}`;
  return { after: previousStreamId(chunk), chunk, skip: Number(m[3]) + 1 };
}

async function stream(call: RouteCall, internal: InternalTransport, keepAliveMs: number): Promise<void> {
  const stepId = call.params[0] as string;
  const resume = resumeFrom(call.url.searchParams.get("after") ?? (call.req.headers["last-event-id"] as string | undefined) ?? "");
  const messages = createClient(JobService, internal.transport).streamJobOutput({ jobId: stepId.split(".")[0] as string, stepId, afterCursor: resume.after }, call.callOptions());
  const it = messages[Symbol.asyncIterator]();
  const first = await it.next(); // errors (bad id, not found, no key) answer before the stream starts
  const sse = startSse(call.res, keepAliveMs);
  try {
    for (let next = first; !next.done; next = await it.next()) {
      const e = next.value.event;
      if (e.case === "tokens") {
        const { tokens, cursor } = e.value;
        const from = cursor === resume.chunk ? resume.skip : 0;
        for (let k = from; k < tokens.length; k++) {
          const t = tokens[k] as (typeof tokens)[number];
          await sse.data(JSON.stringify({ type: "token", t: t.text, i: t.index }), tokenId(cursor, k, tokens.length));
        }
      } else if (e.case === "narration") {
        await sse.data(JSON.stringify({ type: "narration", human: e.value.text, level: NarrationLevel[e.value.level]?.toLowerCase() ?? "info", job_id: stepId }), e.value.cursor);
      } else if (e.case === "stepEnd") {
        for (const line of endEvents(e.value)) await sse.data(line, e.value.cursor);
      }
    }
  } catch (e) {
    const err = ConnectError.from(e);
    if (!call.signal.aborted) await sse.data(`[ERROR] ${err.rawMessage}`);
  } finally {
    await it.return?.();
    sse.end();
  }
}

async function cancel(call: RouteCall, internal: InternalTransport): Promise<void> {
  const stepId = call.params[0] as string;
  const { step } = await createClient(StepService, internal.transport).cancelStep({ stepId, reason: "cancelled through DELETE /v1/jobs/{id}" }, call.callOptions());
  replyJson(call, { job_id: stepId, status: step?.state === StepState.CANCELLED ? "cancelled" : (StepState[step?.state ?? 0] ?? "").toLowerCase() });
}

function pair(base: string, submitName: LegacyName, streamName: LegacyName, deps: LegacyDeps): HttpRoute[] {
  const { internal, maxBytes, keepAliveMs, recordUse } = deps;
  const fail = writeWorkerError;
  const esc = base.replace(/\//g, "\\/");
  return [
    legacyRoute(submitName, recordUse, { method: "POST", path: new RegExp(`^${esc}$`), fail, handle: (call) => submit(call, internal, maxBytes, base) }),
    legacyRoute(streamName, recordUse, { method: "GET", path: new RegExp(`^${esc}\\/([^/]+)\\/stream$`), fail, handle: (call) => stream(call, internal, keepAliveMs) }),
  ];
}

export function workerRoutes(deps: LegacyDeps): HttpRoute[] {
  const { internal, recordUse } = deps;
  return [
    ...pair("/v1/jobs", LEGACY_ROUTES.postJobs, LEGACY_ROUTES.jobStream, deps),
    legacyRoute(LEGACY_ROUTES.deleteJob, recordUse, { method: "DELETE", path: /^\/v1\/jobs\/([^/]+)$/, fail: writeWorkerError, handle: (call) => cancel(call, internal) }),
    ...pair("/v1/inference", LEGACY_ROUTES.postInference, LEGACY_ROUTES.inferenceStream, deps),
  ];
}
