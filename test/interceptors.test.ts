/**
 * Issue 14, item 1: every RPC passes one interceptor chain. An interceptor
 * given to the server (BuildServerOptions.interceptors) sees every method
 * of every service over Connect (JSON and binary), gRPC and gRPC-Web,
 * unary and streaming, including the streams the output lane writes itself
 * (what the Node client's follow() reads), and can refuse each one.
 */
import { create, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { createStepqClient } from "../clients/node/client.js";
import { JobService } from "../gen/stepq/v1/job_service_pb.js";
import { QueueService } from "../gen/stepq/v1/queue_service_pb.js";
import { TenantService } from "../gen/stepq/v1/tenant_service_pb.js";
import { KeyService } from "../gen/stepq/v1/key_service_pb.js";
import { StepService } from "../gen/stepq/v1/step_service_pb.js";
import { servedByLane } from "../server/context.js";
import { echo, useStack } from "./helpers/stack.js";

const SERVICES: DescService[] = [StepService, JobService, KeyService, TenantService, QueueService];
const LANE = new Set(["StreamTokens", "StreamNarration", "StreamJobOutput"]);

interface Seen {
  rpc: string;
  contentType: string;
  stream: boolean;
  lane: boolean;
}

const seen: Seen[] = [];
/** Called when the interceptor sees a call (a stream test stops waiting for its first message then). */
let onSeen: (() => void) | undefined;
/** `${service}.${method}` to refuse, with PERMISSION_DENIED. */
let refuse: string | undefined;
/** Counts the messages of responses it wraps (only when set). */
let wrap = false;
let wrappedMessages = 0;

const recorder: Interceptor = (next) => async (req) => {
  const rpc = `${req.service.name}.${req.method.name}`;
  seen.push({ rpc, contentType: req.header.get("content-type") ?? "", stream: req.stream, lane: req.contextValues.get(servedByLane) });
  onSeen?.();
  if (refuse === rpc) throw new ConnectError(`refused ${rpc} by the test interceptor`, Code.PermissionDenied);
  const res = await next(req);
  if (!wrap || !res.stream) return res;
  return {
    ...res,
    message: (async function* () {
      for await (const m of res.message) {
        wrappedMessages++;
        yield m;
      }
    })(),
  };
};

const stack = await useStack({ interceptors: [recorder] });
void (await stack.worker()).runForever();
const base = stack.server.url;

const TRANSPORTS: Record<string, Transport> = {
  "connect-json": createConnectTransport({ baseUrl: base, httpVersion: "1.1", useBinaryFormat: false }),
  "connect-proto": createConnectTransport({ baseUrl: base, httpVersion: "1.1", useBinaryFormat: true }),
  grpc: createGrpcTransport({ baseUrl: base }),
  "grpc-web": createGrpcWebTransport({ baseUrl: base, httpVersion: "1.1" }),
};

/**
 * Calls `method` with an empty request; resolves once the call ended (any
 * outcome), or for a stream, once the interceptor saw it and passed it on
 * (the stream is then cancelled: an empty WatchSteps would follow events).
 */
async function call(transport: Transport, service: DescService, method: DescMethod): Promise<ConnectError | undefined> {
  const client = createClient(service, transport) as unknown as Record<string, (req: unknown, o: unknown) => unknown>;
  const fn = client[method.localName] as (req: unknown, o: unknown) => unknown;
  const stop = new AbortController();
  const signal = AbortSignal.any([stop.signal, AbortSignal.timeout(5000)]);
  if (method.methodKind !== "unary" && refuse === undefined) onSeen = () => setTimeout(() => stop.abort(), 50);
  try {
    if (method.methodKind === "unary") await (fn(create(method.input), { signal }) as Promise<unknown>);
    else for await (const _ of fn(create(method.input), { signal }) as AsyncIterable<unknown>) break;
    return undefined;
  } catch (e) {
    return ConnectError.from(e);
  } finally {
    onSeen = undefined;
  }
}

const everyCall = Object.keys(TRANSPORTS).flatMap((protocol) =>
  SERVICES.flatMap((service) => service.methods.map((method) => ({ protocol, service, method }))),
);

describe("one interceptor chain for every RPC", () => {
  it("sees every method of every service over Connect JSON and binary, gRPC and gRPC-Web; the lane's streams too", async () => {
    for (const { protocol, service, method } of everyCall) {
      seen.length = 0;
      await call(TRANSPORTS[protocol] as Transport, service, method);
      const rpc = `${service.name}.${method.name}`;
      expect(seen.map((s) => s.rpc), `${protocol} ${rpc}`).toEqual([rpc]);
      expect(seen[0]?.stream).toBe(method.methodKind !== "unary");
      expect(seen[0]?.contentType).toMatch(protocol.startsWith("grpc") ? /^application\/grpc/ : /^application\/(connect\+)?(json|proto)$/);
      // Binary Connect streams of the three output methods are written by the lane.
      expect(seen[0]?.lane, `${protocol} ${rpc}`).toBe(protocol === "connect-proto" && LANE.has(method.name));
    }
  });

  it("refuses each method when told, and the client gets the refusal's code and message", async () => {
    try {
      for (const { protocol, service, method } of everyCall) {
        refuse = `${service.name}.${method.name}`;
        const err = await call(TRANSPORTS[protocol] as Transport, service, method);
        expect(err?.code, `${protocol} ${refuse}`).toBe(Code.PermissionDenied);
        expect(err?.rawMessage).toBe(`refused ${refuse} by the test interceptor`);
      }
    } finally {
      refuse = undefined;
    }
  });

  it("the Node client's follow() goes through it (on the lane), and an interceptor wrapping a lane stream sees every message", async () => {
    const client = createStepqClient({ baseUrl: base });
    const step = await client.submit(echo({ text: "one two three four", tokenCount: 4 }));
    seen.length = 0;
    wrap = true;
    wrappedMessages = 0;
    let received = 0;
    try {
      for await (const res of client.steps.streamTokens({ stepId: step.id })) {
        received++;
        if (res.event.case === "end") break;
      }
    } finally {
      wrap = false;
    }
    expect(seen).toEqual([expect.objectContaining({ rpc: "StepService.StreamTokens", lane: true })]);
    expect(wrappedMessages).toBe(received);
    expect(received).toBeGreaterThan(1);

    seen.length = 0;
    refuse = "JobService.StreamJobOutput";
    try {
      const err = await (async () => {
        for await (const _ of client.follow(step.id, { signal: AbortSignal.timeout(5000), maxReconnects: 0 }));
      })().then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
      expect(err?.code).toBe(Code.PermissionDenied);
      expect(seen[0]).toMatchObject({ rpc: "JobService.StreamJobOutput", lane: true });
    } finally {
      refuse = undefined;
    }
  });
});
