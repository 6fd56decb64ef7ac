/**
 * The output streams (StreamJobOutput, StreamTokens, StreamNarration) as
 * batches of items, one batch per batch of log entries read, for the two
 * ways they are served: the Connect handlers (`connectMessages`) and the
 * direct writer of server/output-lane.ts, which writes each batch in one
 * write. A token chunk stays a log entry until it is sent, so the direct
 * writer can encode it by hand (wire/token-chunk-encoding.ts).
 */
import { create, type DescMessage, type MessageShape, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { EventType } from "../gen/stepq/v1/events_pb.js";
import { JobState } from "../gen/stepq/v1/job_pb.js";
import { StepState } from "../gen/stepq/v1/step_pb.js";
import {
  JobEndSchema,
  type StreamJobOutputRequest,
  type StreamJobOutputResponse,
  StreamJobOutputResponseSchema,
} from "../gen/stepq/v1/job_service_pb.js";
import type { TokenChunk } from "../gen/stepq/v1/output_pb.js";
import {
  type StreamNarrationRequest,
  type StreamNarrationResponse,
  StreamNarrationResponseSchema,
  type StreamTokensRequest,
  type StreamTokensResponse,
  StreamTokensResponseSchema,
} from "../gen/stepq/v1/step_service_pb.js";
import { InvalidArgumentError } from "../queue/errors.js";
import { stepIdOf } from "../queue/ids.js";
import type { LogEntry } from "../queue/log-entry.js";
import type { Queue } from "../queue/queue.js";
import type { StreamView } from "../queue/stream-view.js";
import { type NamedJob, toNarration, toRestart, toStepEnd, toTokenChunk } from "./convert.js";
import type { Scope } from "./caller-scope.js";
import { endedBy, followLog, isLastFinalEvent, refreshed, streamViewOrNotFound } from "./follow-log.js";
import { cursorArg, jobIdArg, stepIdArg } from "./request-args.js";
import type { StreamHub } from "./stream-hub.js";
import type { StreamOutlet } from "./stream-outlet.js";
import { encodeTokenChunkResponse } from "../wire/token-chunk-encoding.js";
import type { LiveFleet } from "./live-fleet.js";
import { EVERY_MS, PositionNarrator, TICK, withTicks } from "./queue-position.js";
import type { Narration } from "../gen/stepq/v1/output_pb.js";

export interface OutputDeps {
  queue: Queue;
  hub: StreamHub;
  /** The live workers, for queue-position lines (server/queue-position.ts); without it, none are sent. */
  fleet?: LiveFleet;
}

export type TokensEntry = Extract<LogEntry, { kind: "tokens" }>;
type EventEntry = Extract<LogEntry, { kind: "event" }>;
type OutputEntry = Exclude<LogEntry, { kind: "event" }>;

/** One message to send: a token chunk still as its log entry, or any other message. */
export type OutputItem<M> = { tokens: TokensEntry; job: StreamView } | { message: M };

/** Batches of items; the stream ends when the generator returns. */
export type OutputBatches<M> = AsyncGenerator<OutputItem<M>[]>;

const JOB_FINAL_EVENTS = new Set<number>([EventType.JOB_SUCCEEDED, EventType.JOB_FAILED, EventType.JOB_CANCELLED]);
const STEP_FINAL_EVENTS = new Set<number>([EventType.STEP_SUCCEEDED, EventType.STEP_FAILED, EventType.STEP_CANCELLED]);

/**
 * The job's log as batches, with TICK between them when `narrator` is set
 * (the position lines are due); the narrator sees every entry passed.
 */
async function* followWithPositions(
  deps: OutputDeps,
  job: StreamView,
  after: string,
  signal: AbortSignal,
  outlet: StreamOutlet | undefined,
  narrator: PositionNarrator | undefined,
): AsyncGenerator<LogEntry[] | typeof TICK> {
  const log = followLog(deps.queue, deps.hub, job, after, signal, outlet);
  if (!narrator) yield* log;
  else {
    for await (const batch of withTicks(log, EVERY_MS)) {
      if (batch !== TICK) {
        for (const e of batch) {
          if (e.kind === "event") narrator.seen(e.cursor, e.event.stepIndex, e.event.type);
          else narrator.seen(e.cursor, undefined);
        }
      }
      yield batch;
    }
  }
  // The log stops when the call's signal aborts: a stream that already sent
  // something (a position line at once) must still end with why (its
  // deadline: DEADLINE_EXCEEDED), not as if it were complete.
  signal.throwIfAborted();
}

/** A position narrator for the queued steps among `indexes` of `job`, when the deps have the fleet. */
function narratorFor(deps: OutputDeps, job: StreamView, after: string, indexes: readonly number[]): PositionNarrator | undefined {
  if (!deps.fleet) return undefined;
  const narrator = new PositionNarrator(deps.queue, deps.fleet, job, after);
  for (const i of indexes) if (job.steps[i]?.state === StepState.QUEUED) narrator.watch(i);
  return narrator;
}

/** Every step's tokens, narration (queue positions included), restarts and ends, then the job's end. */
export async function* jobOutput(
  deps: OutputDeps,
  req: StreamJobOutputRequest,
  signal: AbortSignal,
  scope: Scope,
  outlet?: StreamOutlet,
): OutputBatches<StreamJobOutputResponse> {
  const jobId = jobIdArg("job_id", req.jobId);
  const after = cursorArg("after_cursor", req.afterCursor);
  const only = stepFilter(jobId, req.stepId);
  const { queue } = deps;
  let job = await streamViewOrNotFound(queue, scope, jobId, only);
  if (endedBy(job, only, after)) return;
  const out = (event: StreamJobOutputResponse["event"]) => ({ message: create(StreamJobOutputResponseSchema, { event }) });
  const narrator = narratorFor(deps, job, after, only === undefined ? job.steps.map((_, i) => i) : [only]);
  for await (const batch of followWithPositions(deps, job, after, signal, outlet, narrator)) {
    if (batch === TICK) {
      const lines = (await narrator?.lines()) ?? [];
      const items = lines.filter((n) => only === undefined || n.stepId === stepIdOf(jobId, only)).map((n) => out({ case: "narration", value: n }));
      if (items.length > 0) yield items;
      continue;
    }
    const items: OutputItem<StreamJobOutputResponse>[] = [];
    for (const e of batch) {
      if (only !== undefined && (e.kind === "event" ? e.event.stepIndex : e.stepIndex) !== only) {
        continue;
      } else if (e.kind === "tokens") {
        items.push({ tokens: e, job });
      } else if (e.kind === "narration") {
        items.push(out({ case: "narration", value: toNarration(job, e) }));
      } else if (e.event.type === EventType.STEP_CLAIMED && e.event.attempt > 1) {
        items.push(out({ case: "restart", value: toRestart(job, e) }));
      } else if (STEP_FINAL_EVENTS.has(e.event.type)) {
        // A step retried from the dead-letter list ends again later.
        job = await refreshed(queue, job);
        if (isLastFinalEvent(job, e.event.stepIndex ?? 0, e.cursor)) {
          items.push(out({ case: "stepEnd", value: toStepEnd(job, e) }));
          if (only !== undefined) {
            yield items;
            return;
          }
        }
      } else if (JOB_FINAL_EVENTS.has(e.event.type)) {
        job = await refreshed(queue, job);
        if (isLastFinalEvent(job, undefined, e.cursor)) {
          items.push(
            out({
              case: "jobEnd",
              value: create(JobEndSchema, {
                cursor: e.cursor,
                jobId: job.id,
                state: e.event.jobState ?? JobState.UNSPECIFIED,
                finishedAt: timestampFromMs(e.time),
              }),
            }),
          );
          yield items;
          return;
        }
      }
    }
    if (items.length > 0) yield items;
  }
}

/** The index of StreamJobOutput's `step_id` (undefined when empty), which must be a step of job `jobId`. */
function stepFilter(jobId: string, stepId: string): number | undefined {
  if (stepId === "") return undefined;
  const step = stepIdArg("step_id", stepId);
  if (step.jobId !== jobId) throw new InvalidArgumentError("step_id", `${stepId} is not a step of job_id ${jobId}; give one of its steps, or leave step_id empty`);
  return step.index;
}

/** How one channel of one step turns its log entries into items. */
interface ChannelMapper<M> {
  output(e: OutputEntry, job: StreamView): OutputItem<M> | undefined;
  /** A queue-position line (channels that carry narration). */
  position?(n: Narration): M;
  restart?(e: EventEntry, job: StreamView): M;
  end(e: EventEntry, job: StreamView): M;
}

/**
 * One channel of one step: maps its log entries and ends after the step's
 * last final event (a dead-lettered step may be retried later).
 */
async function* stepChannel<M>(
  deps: OutputDeps,
  stepId: string,
  afterCursor: string,
  signal: AbortSignal,
  scope: Scope,
  outlet: StreamOutlet | undefined,
  map: ChannelMapper<M>,
): OutputBatches<M> {
  const { jobId, index } = stepIdArg("step_id", stepId);
  const after = cursorArg("after_cursor", afterCursor);
  const { queue } = deps;
  let job = await streamViewOrNotFound(queue, scope, jobId, index);
  if (endedBy(job, index, after)) return;
  const position = map.position;
  const narrator = position ? narratorFor(deps, job, after, [index]) : undefined;
  for await (const batch of followWithPositions(deps, job, after, signal, outlet, narrator)) {
    if (batch === TICK) {
      const lines = (await narrator?.lines()) ?? [];
      if (position && lines.length > 0) yield lines.map((n) => ({ message: position(n) }));
      continue;
    }
    const items: OutputItem<M>[] = [];
    for (const e of batch) {
      if (e.kind !== "event") {
        const item = e.stepIndex === index ? map.output(e, job) : undefined;
        if (item !== undefined) items.push(item);
      } else if (e.event.stepIndex !== index) {
        continue;
      } else if (map.restart && e.event.type === EventType.STEP_CLAIMED && e.event.attempt > 1) {
        items.push({ message: map.restart(e, job) });
      } else if (STEP_FINAL_EVENTS.has(e.event.type)) {
        job = await refreshed(queue, job);
        if (isLastFinalEvent(job, index, e.cursor)) {
          items.push({ message: map.end(e, job) });
          yield items;
          return;
        }
      }
    }
    if (items.length > 0) yield items;
  }
}

/** One step's tokens and restarts, then its end. */
export function stepTokens(
  deps: OutputDeps,
  req: StreamTokensRequest,
  signal: AbortSignal,
  scope: Scope,
  outlet?: StreamOutlet,
): OutputBatches<StreamTokensResponse> {
  const msg = (event: StreamTokensResponse["event"]) => create(StreamTokensResponseSchema, { event });
  return stepChannel(deps, req.stepId, req.afterCursor, signal, scope, outlet, {
    output: (e, job) => (e.kind === "tokens" ? { tokens: e, job } : undefined),
    restart: (e, job) => msg({ case: "restart", value: toRestart(job, e) }),
    end: (e, job) => msg({ case: "end", value: toStepEnd(job, e) }),
  });
}

/** One step's narration (queue positions included), then its end. */
export function stepNarration(
  deps: OutputDeps,
  req: StreamNarrationRequest,
  signal: AbortSignal,
  scope: Scope,
  outlet?: StreamOutlet,
): OutputBatches<StreamNarrationResponse> {
  const msg = (event: StreamNarrationResponse["event"]) => create(StreamNarrationResponseSchema, { event });
  return stepChannel(deps, req.stepId, req.afterCursor, signal, scope, outlet, {
    output: (e, job) => (e.kind === "narration" ? { message: msg({ case: "narration", value: toNarration(job, e) }) } : undefined),
    position: (n) => msg({ case: "narration", value: n }),
    end: (e, job) => msg({ case: "end", value: toStepEnd(job, e) }),
  });
}

/** A response schema whose oneof `event` has a `tokens` case holding a TokenChunk (field 1). */
export type TokensResponseSchema = typeof StreamJobOutputResponseSchema | typeof StreamTokensResponseSchema;

/** The response message carrying a token chunk. */
export function tokensMessage<S extends DescMessage>(schema: S, chunk: TokenChunk): MessageShape<S> {
  return create(schema, { event: { case: "tokens", value: chunk } } as never) as MessageShape<S>;
}

/** The response carrying `entry`'s tokens, in protobuf binary: written by hand (wire/token-chunk-encoding.ts), or by `toBinary` when that cannot. */
export function encodeTokensResponse(schema: TokensResponseSchema, job: NamedJob, entry: TokensEntry): Uint8Array {
  const stepName = job.steps[entry.stepIndex]?.name ?? "";
  const fields = { cursor: entry.cursor, stepId: stepIdOf(job.id, entry.stepIndex), stepName, attempt: entry.attempt, firstIndex: entry.firstIndex, texts: entry.texts };
  return encodeTokenChunkResponse(fields) ?? toBinary(schema, tokensMessage(schema, toTokenChunk(job, entry)) as never);
}

/** The items as Connect handler messages, one by one. */
export async function* connectMessages<S extends DescMessage>(schema: S, batches: OutputBatches<MessageShape<S>>): AsyncGenerator<MessageShape<S>> {
  for await (const batch of batches) {
    for (const item of batch) yield "tokens" in item ? tokensMessage(schema, toTokenChunk(item.job, item.tokens)) : item.message;
  }
}
