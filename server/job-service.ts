/**
 * JobService: jobs as DAGs of steps. Handlers validate, call the queue and
 * convert; errors are mapped to Connect codes by the error interceptor.
 */
import { activeTraceparent } from "../runtime/tracing.js";
import { create } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { EventType } from "../gen/stepq/v1/events_pb.js";
import { JobState } from "../gen/stepq/v1/job_pb.js";
import {
  type JobService,
  StreamJobOutputResponseSchema,
  type SubmitJobRequest,
  WatchJobResponseSchema,
} from "../gen/stepq/v1/job_service_pb.js";
import { listJobs } from "../queue/listing.js";
import { type JobInput, jobFieldPaths } from "../queue/prepare-job.js";
import { replyBudget, toEvent, toJob } from "./convert.js";
import { followLog, isLastFinalEvent, jobOrNotFound, refreshed, streamViewOrNotFound } from "./follow-log.js";
import { connectMessages, jobOutput } from "./output-streams.js";
import { cursorArg, enumArg, jobIdArg, pageSizeArg, reasonArg } from "./request-args.js";
import { checkJobInScope, scopeOf, tenantFilter } from "./caller-scope.js";
import { outletFromContext } from "./stream-outlet.js";
import type { ServiceDeps } from "./step-service.js";

const JOB_FINAL_EVENTS = new Set<number>([EventType.JOB_SUCCEEDED, EventType.JOB_FAILED, EventType.JOB_CANCELLED]);

/** A SubmitJob request as the queue's job input. */
export function jobRequestToJob(req: SubmitJobRequest): JobInput {
  return {
    steps: req.steps.map((s) => ({
      name: s.name,
      operation: s.operation,
      dependsOn: s.dependsOn,
      retry: s.retry,
      timeoutMs: s.timeoutMs,
      queueTimeoutMs: s.queueTimeoutMs,
      requirements: s.requirements,
    })),
    priority: req.priority,
    failurePolicy: req.failurePolicy,
    idempotencyKey: req.idempotencyKey,
    labels: req.labels,
    notBefore: req.notBefore ? timestampMs(req.notBefore) : undefined,
  };
}

export function createJobService({ queue, hub, unserved, fleet }: ServiceDeps): ServiceImpl<typeof JobService> {
  return {
    async submitJob(req, ctx) {
      const input = { ...jobRequestToJob(req), tenant: scopeOf(ctx.values).tenant, traceparent: activeTraceparent() };
      const prepared = queue.prepare(input, jobFieldPaths());
      await unserved?.(prepared.routes, "steps: ", prepared.tenant);
      const result = await queue.submit(prepared);
      if (!result?.job) throw new Error("submit returned no record");
      return { job: toJob(result.job, replyBudget(queue.limits)), deduplicated: result.deduplicated };
    },

    async getJob(req, ctx) {
      return { job: toJob(await jobOrNotFound(queue, scopeOf(ctx.values), jobIdArg("job_id", req.jobId)), replyBudget(queue.limits)) };
    },

    async listJobs(req, ctx) {
      const page = await listJobs(queue, {
        tenant: tenantFilter(scopeOf(ctx.values)),
        state: enumArg("state", req.state, JobState, "JOB_STATE_"),
        pageSize: pageSizeArg("page_size", req.pageSize, 20, 200),
        pageToken: req.pageToken,
        pageBytes: queue.limits.maxJobBytes,
      });
      const budget = replyBudget(queue.limits);
      return { jobs: page.jobs.map((job) => toJob(job, budget)), nextPageToken: page.nextPageToken };
    },

    async cancelJob(req, ctx) {
      const jobId = jobIdArg("job_id", req.jobId);
      const scope = scopeOf(ctx.values);
      await checkJobInScope(queue, scope, jobId);
      await queue.cancel(jobId, undefined, reasonArg("reason", req.reason));
      return { job: toJob(await jobOrNotFound(queue, scope, jobId), replyBudget(queue.limits)) };
    },

    async *watchJob(req, ctx) {
      const jobId = jobIdArg("job_id", req.jobId);
      const after = cursorArg("after_cursor", req.afterCursor);
      let job = await streamViewOrNotFound(queue, scopeOf(ctx.values), jobId);
      for await (const batch of followLog(queue, hub, job, after, ctx.signal, outletFromContext(ctx))) {
        for (const e of batch) {
          if (e.kind !== "event") continue;
          yield create(WatchJobResponseSchema, { event: toEvent(e.cursor, e.time, e.event) });
          if (JOB_FINAL_EVENTS.has(e.event.type)) {
            job = await refreshed(queue, job);
            if (isLastFinalEvent(job, undefined, e.cursor)) return;
          }
        }
      }
    },

    streamJobOutput(req, ctx) {
      return connectMessages(StreamJobOutputResponseSchema, jobOutput({ queue, hub, fleet }, req, ctx.signal, scopeOf(ctx.values), outletFromContext(ctx)));
    },
  };
}
