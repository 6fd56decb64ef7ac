/**
 * The job-queue system's routes, on stepq steps (their "job" is a stepq
 * step; see docs/migration.md):
 *
 *   POST /submit-job   {service_required, payload, priority?, max_retries?, customer_id?, workflow_id?}
 *                      -> {success: true, job_id}      (the step's id)
 *   POST /submit-step  the same -> {success: true, step_id}
 *   GET  /job/:id, GET /step/:id -> {success: true, job | step: {...}}
 *   GET  /jobs?status=&limit=&offset= -> {success: true, jobs: [...], limit, offset, has_more}
 *
 * Statuses are the old names (legacy-status.ts). An id may be a step id or
 * the id of a one-step job.
 */
import { type JsonObject, toJson } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { OperationSchema } from "../../../gen/stepq/v1/operation_pb.js";
import { type Step, StepState } from "../../../gen/stepq/v1/step_pb.js";
import { StepService } from "../../../gen/stepq/v1/step_service_pb.js";
import type { HttpRoute, RouteCall } from "../http-api.js";
import type { InternalTransport } from "../internal-transport.js";
import { readJsonObject } from "../read-json-body.js";
import { jobQueueOperation } from "./legacy-operation.js";
import { LEGACY_ROUTES } from "./legacy-names.js";
import { type LegacyDeps, legacyRoute, replyJson, writeJobQueueError } from "./legacy-route.js";
import { oldStatusOf, stateForOldStatus } from "./legacy-status.js";

const MAX_LIMIT = 100;
const MAX_OFFSET = 10_000;

const iso = (t: Timestamp | undefined) => (t ? timestampDate(t).toISOString() : null);

/** A step as the old API showed a job. */
function oldView(step: Step): Record<string, unknown> {
  return {
    id: step.id,
    service_required: step.route,
    status: oldStatusOf(step),
    priority: step.priority,
    payload: step.operation ? toJson(OperationSchema, step.operation) : null,
    worker_id: step.workerId || null,
    progress: Math.round(step.progress * 100),
    progress_message: step.progressMessage || null,
    retry_count: Math.max(0, step.attempt - 1),
    max_retries: Math.max(0, step.maxAttempts - 1),
    created_at: iso(step.createdAt),
    started_at: iso(step.startedAt),
    completed_at: step.state === StepState.SUCCEEDED ? iso(step.finishedAt) : null,
    failed_at: step.state === StepState.FAILED ? iso(step.finishedAt) : null,
    result: step.result ? (step.result.embeddings.length > 0 ? { embeddings: step.result.embeddings.map((e) => e.values) } : step.result.text) : null,
    error: step.error?.message ?? null,
  };
}

function intParam(call: RouteCall, name: string, fallback: number, max: number): number {
  const raw = call.url.searchParams.get(name);
  if (raw === null) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > max) throw new ConnectError(`${name}: must be an integer from 0 to ${max} (got ${JSON.stringify(raw)})`, Code.InvalidArgument);
  return n;
}

function labelsOf(body: JsonObject): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const field of ["customer_id", "workflow_id"]) {
    const v = body[field];
    if (v === undefined || v === null) continue;
    if (typeof v !== "string") throw new ConnectError(`${field}: must be a string`, Code.InvalidArgument);
    labels[field] = v;
  }
  return labels;
}

async function submit(call: RouteCall, internal: InternalTransport, maxBytes: number, api: string): Promise<Step> {
  const body = (await readJsonObject(call.req, maxBytes)) as JsonObject;
  const priority = body.priority ?? 0;
  const retries = body.max_retries;
  if (typeof priority !== "number" || !Number.isInteger(priority)) throw new ConnectError("priority: must be an integer", Code.InvalidArgument);
  if (retries !== undefined && (typeof retries !== "number" || !Number.isInteger(retries) || retries < 0 || retries > 99)) {
    throw new ConnectError("max_retries: must be an integer from 0 to 99", Code.InvalidArgument);
  }
  const { step } = await createClient(StepService, internal.transport).submitStep(
    {
      operation: jobQueueOperation(body),
      priority,
      retry: retries === undefined ? undefined : { maxAttempts: retries + 1 },
      labels: { ...labelsOf(body), api },
    },
    call.callOptions(),
  );
  if (!step) throw new ConnectError("SubmitStep returned no step", Code.Internal);
  return step;
}

async function getStep(call: RouteCall, internal: InternalTransport): Promise<Step> {
  const id = call.params[0] as string;
  const stepId = id.includes(".") ? id : `${id}.0`;
  const { step } = await createClient(StepService, internal.transport).getStep({ stepId }, call.callOptions());
  if (!step) throw new ConnectError(`step ${stepId} not found`, Code.NotFound);
  return step;
}

async function list(call: RouteCall, internal: InternalTransport): Promise<void> {
  const status = call.url.searchParams.get("status");
  const filter = status === null ? { state: StepState.UNSPECIFIED, keep: () => true } : stateForOldStatus(status);
  const limit = intParam(call, "limit", 20, MAX_LIMIT);
  const offset = intParam(call, "offset", 0, MAX_OFFSET);
  const steps = createClient(StepService, internal.transport);
  const out: Step[] = [];
  let skipped = 0;
  let pageToken = "";
  let more = false;
  do {
    const page = await steps.listSteps({ state: filter.state, pageSize: MAX_LIMIT, pageToken }, call.callOptions());
    for (const s of page.steps) {
      if (!filter.keep(s)) continue;
      if (skipped < offset) skipped++;
      else if (out.length < limit) out.push(s);
      else more = true;
    }
    pageToken = page.nextPageToken;
  } while (pageToken !== "" && !more);
  replyJson(call, { success: true, jobs: out.map(oldView), limit, offset, has_more: more || pageToken !== "" });
}

export function jobQueueRoutes({ internal, maxBytes, recordUse }: LegacyDeps): HttpRoute[] {
  const fail = writeJobQueueError;
  return [
    legacyRoute(LEGACY_ROUTES.submitJob, recordUse, {
      method: "POST",
      path: /^\/submit-job$/,
      fail,
      handle: async (call) => replyJson(call, { success: true, job_id: (await submit(call, internal, maxBytes, "legacy.submit-job")).id }),
    }),
    legacyRoute(LEGACY_ROUTES.submitStep, recordUse, {
      method: "POST",
      path: /^\/submit-step$/,
      fail,
      handle: async (call) => replyJson(call, { success: true, step_id: (await submit(call, internal, maxBytes, "legacy.submit-step")).id }),
    }),
    legacyRoute(LEGACY_ROUTES.getJob, recordUse, {
      method: "GET",
      path: /^\/job\/([^/]+)$/,
      fail,
      handle: async (call) => replyJson(call, { success: true, job: oldView(await getStep(call, internal)) }),
    }),
    legacyRoute(LEGACY_ROUTES.getStep, recordUse, {
      method: "GET",
      path: /^\/step\/([^/]+)$/,
      fail,
      handle: async (call) => replyJson(call, { success: true, step: oldView(await getStep(call, internal)) }),
    }),
    legacyRoute(LEGACY_ROUTES.listJobs, recordUse, { method: "GET", path: /^\/jobs$/, fail, handle: (call) => list(call, internal) }),
  ];
}
