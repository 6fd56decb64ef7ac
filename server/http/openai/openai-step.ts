/**
 * What every OpenAI-compatible route does with its step: check that a live
 * worker serves the model, submit the step (an ordinary step, labelled with
 * the API it came from: visible, cancellable and retried like any other),
 * cancel it when the client goes away before its end, and read its output
 * (tokens as they come, or the result at its end). All through the RPCs, on
 * the caller's behalf.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { JobService } from "../../../gen/stepq/v1/job_service_pb.js";
import type { StepEnd } from "../../../gen/stepq/v1/output_pb.js";
import type { OperationSchema } from "../../../gen/stepq/v1/operation_pb.js";
import { QueueService } from "../../../gen/stepq/v1/queue_service_pb.js";
import { type Step, StepState, StopReason } from "../../../gen/stepq/v1/step_pb.js";
import { StepService } from "../../../gen/stepq/v1/step_service_pb.js";
import type { RouteCall } from "../http-api.js";
import type { InternalTransport } from "../internal-transport.js";
import { ModelNotFoundError, OpenAiFieldError } from "./openai-error.js";

type OperationInit = MessageInitShape<typeof OperationSchema>;

/** A submitted step and the way to read it. */
export interface OpenAiStep {
  step: Step;
  /** Its output's text pieces as they come, then its end (a retry after output was sent is an error). */
  pieces(): AsyncGenerator<string, StepEnd>;
  /** Waits for its end and returns it in its final state (with its result). */
  finished(): Promise<Step>;
}

/** OpenAI's finish_reason for a stop reason. */
export function finishReason(reason: StopReason): "stop" | "length" {
  return reason === StopReason.MAX_TOKENS ? "length" : "stop";
}

/** The OpenAI name of a stepq request field the server refused (`operation.infer.max_tokens` -> `max_tokens`). */
function openAiParam(path: string, names: Record<string, string>): string {
  const field = path.replace(/^operation\.(infer|embed)\./, "");
  const head = /^[a-z_]+/.exec(field)?.[0] ?? field;
  return (names[head] ?? head) + field.slice(head.length);
}

/** Refuses a model that no live worker serves on `route` (OpenAI answers an unknown model 404). */
async function checkServed(call: RouteCall, internal: InternalTransport, route: string, model: string): Promise<void> {
  const { workers } = await createClient(QueueService, internal.transport).listWorkers({}, call.callOptions());
  if (!workers.some((w) => w.routes.includes(route))) throw new ModelNotFoundError(model);
}

/**
 * Submits `operation` (route `route`, for `model`) as the caller, labelled
 * `api`; stepq's field errors come back named as the OpenAI request names
 * them (`names` maps stepq's field to OpenAI's where they differ).
 */
export async function submitOpenAiStep(
  call: RouteCall,
  internal: InternalTransport,
  req: { route: string; model: string; operation: OperationInit; api: string; names?: Record<string, string> },
): Promise<OpenAiStep> {
  await checkServed(call, internal, req.route, req.model);
  const steps = createClient(StepService, internal.transport);
  let step: Step | undefined;
  try {
    step = (await steps.submitStep({ operation: req.operation, labels: { api: req.api } }, call.callOptions())).step;
  } catch (e) {
    const err = ConnectError.from(e);
    const field = /^(operation\.[a-z_.[\]0-9]+): (.*)$/s.exec(err.rawMessage);
    if (err.code === Code.InvalidArgument && field) throw new OpenAiFieldError(openAiParam(field[1] as string, req.names ?? {}), field[2] as string);
    throw err;
  }
  if (!step) throw new ConnectError("SubmitStep returned no step", Code.Internal);
  cancelOnDisconnect(call, internal, step.id);
  return { step, pieces: () => pieces(call, internal, step), finished: () => finished(call, internal, step) };
}

/** Cancels the step when the client goes away before the response ended (the step then serves nobody). */
function cancelOnDisconnect(call: RouteCall, internal: InternalTransport, stepId: string): void {
  call.res.once("close", () => {
    if (call.res.writableFinished) return;
    const options = internal.callOptions(call.req, AbortSignal.timeout(10_000), call.req.headers.authorization);
    createClient(StepService, internal.transport)
      .cancelStep({ stepId, reason: "the OpenAI-compatible client disconnected before the end" }, options)
      .catch(() => undefined); // already final, or Redis away: nothing more to do for a client that left
  });
}

async function* pieces(call: RouteCall, internal: InternalTransport, step: Step): AsyncGenerator<string, StepEnd> {
  let sent = false;
  for await (const m of createClient(JobService, internal.transport).streamJobOutput({ jobId: step.jobId, stepId: step.id }, call.callOptions())) {
    const e = m.event;
    if (e.case === "tokens") {
      for (const t of e.value.tokens) {
        sent = true;
        yield t.text;
      }
    } else if (e.case === "restart" && sent) {
      throw new ConnectError(`step ${step.id} failed after sending part of its output and is being retried; ask again`, Code.Aborted);
    } else if (e.case === "stepEnd") {
      return e.value;
    }
  }
  throw new ConnectError(`the output of step ${step.id} ended without its end`, Code.Unavailable);
}

async function finished(call: RouteCall, internal: InternalTransport, step: Step): Promise<Step> {
  for await (const m of createClient(JobService, internal.transport).streamJobOutput({ jobId: step.jobId, stepId: step.id }, call.callOptions())) {
    if (m.event.case === "stepEnd") break;
  }
  const done = (await createClient(StepService, internal.transport).getStep({ stepId: step.id }, call.callOptions())).step;
  if (!done) throw new ConnectError(`step ${step.id} is gone`, Code.NotFound);
  return done;
}

/** Throws the error of a step that did not succeed, as the OpenAI routes answer it (500, server_error). */
export function mustHaveSucceeded(step: Step | StepEnd): void {
  if (step.state === StepState.SUCCEEDED) return;
  const what = step.state === StepState.CANCELLED ? "was cancelled" : "failed";
  const id = "id" in step ? step.id : step.stepId;
  throw new ConnectError(`step ${id} ${what}: ${step.error?.message ?? "no error recorded"}`, Code.Internal);
}
