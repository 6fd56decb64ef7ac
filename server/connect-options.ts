/**
 * The options of the Connect adapter: which services answer, the
 * interceptors in their order, and how requests are read (size limit,
 * compressions, JSON). In one place because several of them work together
 * to give every malformed request a client error that says what to fix:
 *
 * - each RPC gets its own JSON options, whose decoder names the field a bad
 *   JSON request got wrong (server/json-request-options.ts);
 * - the accepted compressions answer a corrupt body INVALID_ARGUMENT
 *   (server/request-compression.ts);
 * - request bodies count against the server-wide budget for bytes in flight
 *   (server/request-budget.ts);
 * - answers Connect gives without a body (404, 405, 415) get one that says
 *   what exists or what to send (server/refusals.ts);
 * - unary handlers are wrapped so that errors Connect raises while reading
 *   a request, before any interceptor, are explained
 *   (server/unary-request-errors.ts); the per-request context values are how
 *   the wrapper knows a call reached the interceptors, and how the error
 *   interceptor tells a client's reset from a server fault.
 */
import type { DescMethod, DescService, JsonReadOptions } from "@bufbuild/protobuf";
import { type ConnectRouter, createContextValues, type Interceptor } from "@connectrpc/connect";
import type { ConnectNodeAdapterOptions } from "@connectrpc/connect-node";
import { JobService } from "../gen/stepq/v1/job_service_pb.js";
import { KeyService } from "../gen/stepq/v1/key_service_pb.js";
import { TenantService } from "../gen/stepq/v1/tenant_service_pb.js";
import { QueueService } from "../gen/stepq/v1/queue_service_pb.js";
import { StepService } from "../gen/stepq/v1/step_service_pb.js";
import { WebhookService } from "../gen/stepq/v1/webhook_service_pb.js";
import { createWebhookService } from "./webhook-service.js";
import { Health } from "../gen/grpc/health/v1/health_pb.js";
import { createHealthService } from "./health-service.js";
import { kStreamOutlet, transportGone } from "./context.js";
import { createErrorInterceptor } from "./errors.js";
import { createJobService } from "./job-service.js";
import { createKeyService } from "./key-service.js";
import { createQueueService } from "./queue-service.js";
import { createTenantService } from "./tenant-service.js";
import { jsonRequestOptions } from "./json-request-options.js";
import { requestCompressions } from "./request-compression.js";
import { createStepService, type ServiceDeps } from "./step-service.js";
import { createStreamLimitInterceptor, type StreamSlots } from "./stream-limit.js";
import { outletOf } from "./stream-outlet.js";
import { createNotFoundFallback, withRefusalBodies } from "./refusals.js";
import { type RequestBudget, withRequestBudget } from "./request-budget.js";
import { withUnaryRequestErrors } from "./unary-request-errors.js";

const SERVICES = [StepService, JobService, KeyService, TenantService, QueueService, WebhookService];

export interface ConnectOptionsInit {
  deps: ServiceDeps;
  slots: StreamSlots;
  /** Largest request message, bytes (--max-request-bytes). */
  maxRequestBytes: number;
  /** Request bytes in flight across the server (--max-inflight-request-bytes). */
  budget: RequestBudget;
  /** Logs an unexpected error; the client only learns "internal error". */
  log(err: Error): void;
  /** The server's interceptors (authentication, metrics...), outermost, before the server's own. */
  interceptors?: readonly Interceptor[];
}

/** Reject unknown JSON fields: a typo in a curl request gets an error naming it. */
const JSON_READ: Partial<JsonReadOptions> = { ignoreUnknownFields: false };

type AnyImpl = Record<string, (...args: never[]) => unknown>;

/** Registers every method of `service` on its own, with JSON options for its request type. */
function registerService(router: ConnectRouter, service: DescService, impl: object): void {
  for (const method of service.methods as DescMethod[]) {
    const fn = (impl as AnyImpl)[method.localName];
    if (typeof fn !== "function") throw new Error(`${service.typeName}.${method.name} has no implementation`);
    router.rpc(method, fn.bind(impl) as never, { jsonOptions: jsonRequestOptions(method.input, JSON_READ) });
  }
}

/** The options for `connectNodeAdapter`. */
export function createConnectOptions(init: ConnectOptionsInit): ConnectNodeAdapterOptions {
  const { deps, slots, maxRequestBytes, budget, log } = init;
  return {
    routes(router) {
      registerService(router, StepService, createStepService(deps));
      registerService(router, JobService, createJobService(deps));
      registerService(router, KeyService, createKeyService(deps));
      registerService(router, TenantService, createTenantService(deps));
      registerService(router, QueueService, createQueueService(deps));
      registerService(router, WebhookService, createWebhookService(deps));
      registerService(router, Health, createHealthService(deps.queue.redis, SERVICES));
      for (const [i, h] of router.handlers.entries()) {
        router.handlers[i] = withRequestBudget(withRefusalBodies(withUnaryRequestErrors(h), SERVICES), budget);
      }
    },
    // Paths that are no RPC: 404 (gRPC: UNIMPLEMENTED) with a body naming what exists.
    fallback: createNotFoundFallback(SERVICES),
    // The server's interceptors run first (a call refused there takes no
    // stream slot), then the stream limit, so a refused stream never reaches
    // the handler; the error mapper runs last, next to the handlers, so every
    // interceptor above it sees Connect errors only. The output lane runs the
    // same server interceptors (server/lane-interceptors.ts).
    interceptors: [...(init.interceptors ?? []), createStreamLimitInterceptor(slots), createErrorInterceptor(log)],
    readMaxBytes: maxRequestBytes,
    jsonOptions: JSON_READ,
    acceptCompression: requestCompressions,
    // Each request carries whether its transport is gone, and its response's
    // outlet: stream handlers count its unsent bytes against their buffer
    // bound and drop stalled readers through it.
    contextValues: (req) =>
      createContextValues()
        .set(transportGone, () => ("stream" in req ? req.stream.destroyed || req.stream.closed : req.socket.destroyed))
        .set(kStreamOutlet, outletOf(req)),
  };
}
