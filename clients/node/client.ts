/**
 * The typed Node client: the generated StepService and JobService clients,
 * plus helpers for the common path (submit, get, cancel, follow, wait).
 *
 *   const stepq = createStepqClient({ baseUrl: "http://127.0.0.1:8080" });
 *   const step = await stepq.submit({ kind: { case: "infer", value: { model: "tiny", prompt: "Hi" } } });
 *   for await (const e of stepq.follow(step.id)) if (e.type === "tokens") process.stdout.write(e.tokens.map((t) => t.text).join(""));
 */
import { context, propagation } from "@opentelemetry/api";
import { type Client, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport, createNodeHttpClient, Http2SessionManager } from "@connectrpc/connect-node";
import { JobService } from "../../gen/stepq/v1/job_service_pb.js";
import { StepService } from "../../gen/stepq/v1/step_service_pb.js";
import type { Step } from "../../gen/stepq/v1/step_pb.js";
import { stepCalls } from "../shared/step-calls.js";
import { type FollowEvent, type FollowOptions, followJob, followStep, type JobFollowEvent } from "./follow.js";
import { createOutputReader, type OpenJobOutput } from "./output-reader.js";

export type { FollowEvent, FollowOptions, JobFollowEvent };

const withTraceContext: Interceptor = (next) => (req) => {
  propagation.inject(context.active(), req.header, { set: (h: Headers, k: string, v: string) => h.set(k, v) });
  return next(req);
};

export interface StepqClientOptions {
  /** Server URL, e.g. http://127.0.0.1:8080. */
  baseUrl: string;
  /** Wire protocol. Default "connect". gRPC needs HTTP/2. */
  protocol?: "connect" | "grpc" | "grpc-web";
  /**
   * HTTP version. Default "1.1" for connect and grpc-web, "2" for grpc
   * (h2c: a stepq server speaks both on one port). Over HTTP/2 one
   * connection carries every call and every stream follow() opens: less
   * CPU per streamed message with ~100 streams, but more latency with
   * ~1,000 (one socket, one flow-control window; docs/benchmarks.md).
   */
  httpVersion?: "1.1" | "2";
  /** Use this transport instead (tests, custom interceptors). */
  transport?: Transport;
  /** An API key's secret, sent as `Authorization: Bearer <secret>` on every call and stream (`stepq keys create`). */
  apiKey?: string;
  /** Certificates (PEM) to trust for an https:// server, besides the system's: a private CA or a self-signed server. */
  ca?: string | Buffer;
}

export type StepqClient = ReturnType<typeof createStepqClient>;


/** HTTP/2 for gRPC, HTTP/1.1 for Connect and gRPC-Web, unless `options.httpVersion` says otherwise. */
function httpVersionOf(options: StepqClientOptions): "1.1" | "2" {
  return options.httpVersion ?? ((options.protocol ?? "connect") === "grpc" ? "2" : "1.1");
}

/** A transport for `options`; over HTTP/2 it uses `sessions` when given (one connection shared with other users). */
export function createTransport(options: StepqClientOptions, sessions?: Http2SessionManager): Transport {
  if (options.transport) return options.transport;
  const protocol = options.protocol ?? "connect";
  // The caller's trace context (W3C traceparent) goes with every call when the
  // application runs OpenTelemetry; without it, the API's propagator does nothing.
  const interceptors: Interceptor[] = [withTraceContext, ...(options.apiKey ? [withApiKey(options.apiKey)] : [])];
  const { baseUrl } = options;
  if (protocol === "grpc") return createGrpcTransport({ baseUrl, sessionManager: sessions, interceptors, nodeOptions: caOptions(options) });
  const httpVersion = httpVersionOf(options);
  if (httpVersion === "1.1") {
    const nodeOptions = caOptions(options);
    return protocol === "grpc-web"
      ? createGrpcWebTransport({ baseUrl, httpVersion, interceptors, nodeOptions })
      : createConnectTransport({ baseUrl, httpVersion, interceptors, nodeOptions });
  }
  return protocol === "grpc-web"
    ? createGrpcWebTransport({ baseUrl, httpVersion, sessionManager: sessions, interceptors })
    : createConnectTransport({ baseUrl, httpVersion, sessionManager: sessions, interceptors });
}

/** Node's TLS options for `options.ca` (none without it). */
function caOptions(options: StepqClientOptions): { ca?: string | Buffer } {
  return options.ca ? { ca: options.ca } : {};
}

/** Sends `secret` as the call's bearer token. */
function withApiKey(secret: string): Interceptor {
  return (next) => (req) => {
    req.header.set("authorization", `Bearer ${secret}`);
    return next(req);
  };
}

export function createStepqClient(options: StepqClientOptions) {
  const httpVersion = httpVersionOf(options);
  // One HTTP/2 connection for the calls and the streams follow() opens.
  const sessions = httpVersion === "2" && !options.transport ? new Http2SessionManager(options.baseUrl, undefined, caOptions(options)) : undefined;
  const transport = createTransport(options, sessions);
  const steps: Client<typeof StepService> = createClient(StepService, transport);
  const jobs: Client<typeof JobService> = createClient(JobService, transport);
  // follow() reads StreamJobOutput itself over the default Connect
  // transport (see output-reader.ts); a custom transport or another
  // protocol goes through the generated client.
  const openOutput: OpenJobOutput =
    options.transport || (options.protocol ?? "connect") !== "connect"
      ? (req, signal) => jobs.streamJobOutput(req, { signal })
      : createOutputReader(
          options.baseUrl,
          sessions
            ? createNodeHttpClient({ httpVersion: "2", sessionProvider: () => sessions })
            : createNodeHttpClient({ httpVersion: "1.1", nodeOptions: caOptions(options) }),
          options.apiKey,
        );
  const calls = stepCalls(steps);
  return {
    /** The generated StepService client (every RPC). */
    steps,
    /** The generated JobService client (every RPC). */
    jobs,

    ...calls,

    /**
     * The step's tokens and narration as they come, ending with `end`;
     * reconnects by itself and resumes from the last cursor.
     */
    follow(stepId: string, opts: FollowOptions = {}): AsyncGenerator<FollowEvent> {
      return followStep(openOutput, stepId, opts);
    },

    /**
     * Every step's tokens and narration of job `jobId`, each step's `end`,
     * then the job's `jobEnd`; reconnects and resumes like follow().
     */
    followJob(jobId: string, opts: FollowOptions = {}): AsyncGenerator<JobFollowEvent> {
      return followJob(openOutput, jobId, opts);
    },

    /** Follows the step to its end and returns it in its final state. */
    async wait(stepId: string, opts: FollowOptions = {}): Promise<Step> {
      for await (const e of followStep(openOutput, stepId, opts)) if (e.type === "end") break;
      return calls.get(stepId);
    },
  };
}
