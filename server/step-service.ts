/**
 * StepService: single steps. Handlers validate, call the queue and convert;
 * errors are mapped to Connect codes by the error interceptor.
 */
import { create } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { EventType } from "../gen/stepq/v1/events_pb.js";
import {
  type StepService,
  StreamNarrationResponseSchema,
  StreamTokensResponseSchema,
  type SubmitStepRequest,
  SubmitStepResponseSchema,
  WatchStepsResponseSchema,
} from "../gen/stepq/v1/step_service_pb.js";
import { StepState } from "../gen/stepq/v1/step_pb.js";
import { DataLossError, InvalidArgumentError, NotFoundError, OutOfRangeError } from "../queue/errors.js";
import { stepIdOf } from "../queue/ids.js";
import { listSteps } from "../queue/listing.js";
import { eventsAfter, parseEventCursor, previousStreamId } from "../queue/log-entry.js";
import { type JobInput, oneStepJob, stepFieldPaths } from "../queue/prepare-job.js";
import type { Queue, SubmitResult } from "../queue/queue.js";
import { replyBudget, toEvent, toStep } from "./convert.js";
import { checkJobInScope, type Scope, scopeOf, tenantFilter } from "./caller-scope.js";
import { jobOrNotFound } from "./follow-log.js";
import { connectMessages, stepNarration, stepTokens } from "./output-streams.js";
import { cursorArg, enumArg, jobIdArg, pageSizeArg, reasonArg, stepIdArg } from "./request-args.js";
import type { UnservedCheck } from "./unserved-routes.js";
import type { LiveFleet } from "./live-fleet.js";
import { activeTraceparent } from "../runtime/tracing.js";
import type { WebhookDeps } from "./webhook-service.js";
import type { StreamHub } from "./stream-hub.js";
import { outletFromContext } from "./stream-outlet.js";

export interface ServiceDeps {
  queue: Queue;
  hub: StreamHub;
  /** The webhook senders (WebhookService refreshes their view after a change); absent in tests that build services alone. */
  webhooks?: WebhookDeps;
  /** Refuses steps no live worker serves (--unserved-routes reject); absent: they wait. */
  unserved?: UnservedCheck;
  /** The live workers, for queue-position narration; absent: none is sent. */
  fleet?: LiveFleet;
}

/** The most requests in one SubmitSteps call. */
export const MAX_BATCH = 1000;

/** A SubmitStep request as a one-step job named "main". */
export function stepRequestToJob(req: SubmitStepRequest): JobInput {
  return oneStepJob({
    operation: req.operation,
    retry: req.retry,
    timeoutMs: req.timeoutMs,
    queueTimeoutMs: req.queueTimeoutMs,
    requirements: req.requirements,
    priority: req.priority,
    idempotencyKey: req.idempotencyKey,
    labels: req.labels,
    notBefore: req.notBefore ? timestampMs(req.notBefore) : undefined,
  });
}

function submitted(r: SubmitResult) {
  if (!r.job) throw new Error(`submit returned no record for job ${r.jobId}`);
  return create(SubmitStepResponseSchema, { step: toStep(r.job, 0), deduplicated: r.deduplicated });
}


export function createStepService({ queue, hub, unserved, fleet }: ServiceDeps): ServiceImpl<typeof StepService> {
  /** Awaits `change`; a NOT_FOUND it raises is replaced by one saying whether the job exists and how many steps it has. */
  async function explainNotFound(change: Promise<void>, scope: Scope, jobId: string, index: number): Promise<void> {
    try {
      await change;
    } catch (e) {
      if (e instanceof NotFoundError) await jobOrNotFound(queue, scope, jobId, index);
      throw e;
    }
  }

  /** Checks the caller may act on the step's job, runs `change`, and answers the step as it is then. */
  async function actOnStep(stepId: string, ctx: HandlerContext, change: (jobId: string, index: number) => Promise<void>) {
    const { jobId, index } = stepIdArg("step_id", stepId);
    const scope = scopeOf(ctx.values);
    await checkJobInScope(queue, scope, jobId);
    await explainNotFound(change(jobId, index), scope, jobId, index);
    return { step: toStep(await jobOrNotFound(queue, scope, jobId, index), index, replyBudget(queue.limits)) };
  }

  return {
    async submitStep(req, ctx) {
      const input = { ...stepRequestToJob(req), tenant: scopeOf(ctx.values).tenant, traceparent: activeTraceparent() };
      const prepared = queue.prepare(input, stepFieldPaths());
      await unserved?.(prepared.routes, "operation: ", prepared.tenant);
      const result = await queue.submit(prepared);
      return submitted(result as SubmitResult);
    },

    async submitSteps(req, ctx) {
      const tenant = scopeOf(ctx.values).tenant;
      const n = req.requests.length;
      if (n === 0) throw new InvalidArgumentError("requests", "is empty: send 1 to 1000 steps");
      if (n > MAX_BATCH) throw new InvalidArgumentError("requests", `has ${n} steps; at most ${MAX_BATCH} per call`);
      const traceparent = activeTraceparent();
      const prepared = req.requests.map((r, i) => queue.prepare({ ...stepRequestToJob(r), tenant, traceparent }, stepFieldPaths(`requests[${i}].`)));
      if (unserved) for (const [i, p] of prepared.entries()) await unserved(p.routes, `requests[${i}].operation: `, p.tenant);
      const results = await queue.submitAll(prepared);
      return { responses: results.map(submitted) };
    },

    async getStep(req, ctx) {
      const { jobId, index } = stepIdArg("step_id", req.stepId);
      return { step: toStep(await jobOrNotFound(queue, scopeOf(ctx.values), jobId, index), index, replyBudget(queue.limits)) };
    },

    async listSteps(req, ctx) {
      const state = enumArg("state", req.state, StepState, "STEP_STATE_");
      if (req.route.length > 200) throw new InvalidArgumentError("route", "is longer than 200 characters");
      const page = await listSteps(queue, {
        tenant: tenantFilter(scopeOf(ctx.values)),
        state,
        route: req.route,
        pageSize: pageSizeArg("page_size", req.pageSize, 50, 500),
        pageToken: req.pageToken,
        pageBytes: queue.limits.maxJobBytes,
      });
      const budget = replyBudget(queue.limits);
      return {
        steps: page.steps.map(({ job, step }) => toStep(job, step.index, budget)),
        nextPageToken: page.nextPageToken,
      };
    },

    cancelStep(req, ctx) {
      const reason = reasonArg("reason", req.reason);
      return actOnStep(req.stepId, ctx, (jobId, index) => queue.cancel(jobId, index, reason));
    },

    retryStep(req, ctx) {
      return actOnStep(req.stepId, ctx, (jobId, index) => queue.retryStep(jobId, index));
    },

    purgeStep(req, ctx) {
      return actOnStep(req.stepId, ctx, (jobId, index) => queue.purgeStep(jobId, index));
    },

    streamTokens(req, ctx) {
      return connectMessages(StreamTokensResponseSchema, stepTokens({ queue, hub }, req, ctx.signal, scopeOf(ctx.values), outletFromContext(ctx)));
    },

    streamNarration(req, ctx) {
      return connectMessages(StreamNarrationResponseSchema, stepNarration({ queue, hub, fleet }, req, ctx.signal, scopeOf(ctx.values), outletFromContext(ctx)));
    },

    async *watchSteps(req, ctx) {
      const stepIds = new Set(req.stepIds.map((id, i) => {
        const ref = stepIdArg(`step_ids[${i}]`, id);
        return stepIdOf(ref.jobId, ref.index);
      }));
      const jobId = req.jobId === "" ? "" : jobIdArg("job_id", req.jobId);
      const routes = new Set(req.routes);
      const types = new Set(req.types.map((t, i) => enumArg(`types[${i}]`, t, EventType, "EVENT_TYPE_")));
      const cursor = cursorArg("after_cursor", req.afterCursor, true);
      const scope = scopeOf(ctx.values);
      const start = cursor === "" ? undefined : parseEventCursor(cursor);
      let after: string;
      if (!start) after = await queue.lastEventCursor();
      else {
        // A cursor inside a batch entry: read that entry again (eventsAfter
        // skips what was seen), so its events must still be retained too.
        after = start.index === undefined ? start.id : previousStreamId(start.id);
        if (await queue.eventsTrimmedAfter(after)) {
          throw new OutOfRangeError(
            `after_cursor ${cursor} is older than the retained events (the events stream is capped); ` +
              "watch again without a cursor and read current state with GetStep/GetJob",
          );
        }
      }
      const outlet = outletFromContext(ctx);
      const sub = hub.subscribe(queue.keys.events, after, {
        unsent: outlet?.unsent,
        onStall: outlet?.abandon,
        beyondEnd: (last) =>
          new OutOfRangeError(
            `after_cursor ${cursor} is beyond the end of the events stream (last event ${last || "none"}); ` +
              "pass the cursor of an event you received, or leave it empty to watch from now",
          ),
        lost: () =>
          new DataLossError(
            "the queue's events are gone: Redis lost its data while this stream was open (it restarted without persistence); " +
              "watch again without a cursor and read current state with GetStep/GetJob",
          ),
      });
      const stop = () => sub.close();
      ctx.signal.addEventListener("abort", stop);
      // Aborted already (a deadline that passed while the stream was set up): no abort event will come.
      if (ctx.signal.aborted) stop();
      try {
        for await (const batch of sub) {
          for (const raw of batch) {
            for (const { cursor, time, event } of eventsAfter(raw.id, raw.fields, start)) {
              // Another tenant's events are never sent; nor, to a tenant, the fleet's (worker events have no job).
              if (!scope.allTenants && (event.jobId === "" || event.tenant !== scope.tenant)) continue;
              if (jobId && event.jobId !== jobId) continue;
              if (stepIds.size > 0 && (event.stepIndex === undefined || !stepIds.has(stepIdOf(event.jobId, event.stepIndex)))) continue;
              if (routes.size > 0 && !routes.has(event.route ?? "")) continue;
              if (types.size > 0 && !types.has(event.type)) continue;
              yield create(WatchStepsResponseSchema, { event: toEvent(cursor, time, event) });
            }
          }
        }
      } finally {
        ctx.signal.removeEventListener("abort", stop);
        sub.close();
      }
    },
  };
}
