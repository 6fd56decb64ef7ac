/**
 * The typed browser client: the generated clients of every stepq service
 * over `@connectrpc/connect-web` (the Connect protocol by default, gRPC-Web
 * as an option), plus the conveniences of the Node client a browser can
 * have: submit (retried safely with an idempotency key), get, cancel, and
 * follow(stepId | jobId), which reconnects by itself and resumes from its
 * cursor, nothing lost or repeated (clients/shared/follow.ts). No Node
 * built-ins: `npm run build` bundles it for browsers (dist/web/stepq-web.js).
 *
 *   const stepq = createStepqWebClient({ baseUrl: "https://stepq.example.com", apiKey });
 *   const step = await stepq.submit({ kind: { case: "infer", value: { model: "qwen", prompt: "Hi" } } }, { idempotencyKey: crypto.randomUUID() });
 *   for await (const e of stepq.follow(step.id)) if (e.type === "tokens") out.textContent += e.tokens.map((t) => t.text).join("");
 */
import { type Client, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { JobService } from "../../gen/stepq/v1/job_service_pb.js";
import { KeyService } from "../../gen/stepq/v1/key_service_pb.js";
import { QueueService } from "../../gen/stepq/v1/queue_service_pb.js";
import type { Step } from "../../gen/stepq/v1/step_pb.js";
import { StepService } from "../../gen/stepq/v1/step_service_pb.js";
import { TenantService } from "../../gen/stepq/v1/tenant_service_pb.js";
import { WebhookService } from "../../gen/stepq/v1/webhook_service_pb.js";
import { stepCalls } from "../shared/step-calls.js";
import { type FollowEvent, type FollowOptions, followJob, followStep, type JobFollowEvent, type OpenJobOutput } from "../shared/follow.js";

export interface StepqWebClientOptions {
  /** The server's URL, e.g. https://stepq.example.com (its --cors-origins must list this page's origin unless it is the same). */
  baseUrl: string;
  /** Wire protocol. Default "connect". */
  protocol?: "connect" | "grpc-web";
  /** An API key's secret, sent as `Authorization: Bearer <secret>` on every call and stream. */
  apiKey?: string;
  /** A fetch to use instead of the page's. */
  fetch?: typeof globalThis.fetch;
}


export type StepqWebClient = ReturnType<typeof createStepqWebClient>;

export function createStepqWebClient(options: StepqWebClientOptions) {
  const withKey: Interceptor = (next) => (req) => {
    if (options.apiKey) req.header.set("authorization", `Bearer ${options.apiKey}`);
    return next(req);
  };
  const common = { baseUrl: options.baseUrl, interceptors: [withKey], fetch: options.fetch };
  const transport = options.protocol === "grpc-web" ? createGrpcWebTransport(common) : createConnectTransport(common);
  const steps: Client<typeof StepService> = createClient(StepService, transport);
  const jobs: Client<typeof JobService> = createClient(JobService, transport);
  const open: OpenJobOutput = (req, signal) => jobs.streamJobOutput({ ...req, stepId: req.stepId ?? "" }, { signal });
  const calls = stepCalls(steps);

  return {
    /** The generated clients, for every RPC. */
    steps,
    jobs,
    queue: createClient(QueueService, transport),
    webhooks: createClient(WebhookService, transport),
    tenants: createClient(TenantService, transport),
    keys: createClient(KeyService, transport),

    ...calls,

    /**
     * A step's tokens and narration as they come, ending with its `end`; or,
     * for a job id, every step's, each step's `end`, then the job's `jobEnd`.
     * Reconnects by itself and resumes from the last cursor (`afterCursor`
     * resumes from one kept earlier, e.g. across a page reload).
     */
    follow(id: string, opts: FollowOptions = {}): AsyncGenerator<JobFollowEvent> {
      return id.includes(".") ? followStep(open, id, opts) : followJob(open, id, opts);
    },

    /** Follows the step to its end and returns it in its final state. */
    async wait(stepId: string, opts: FollowOptions = {}): Promise<Step> {
      for await (const e of followStep(open, stepId, opts)) if (e.type === "end") break;
      return calls.get(stepId);
    },
  };
}

export type { FollowEvent, FollowOptions, JobFollowEvent };
