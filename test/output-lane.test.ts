/**
 * The direct writer for output streams (server/output-lane.ts), the
 * hand-written token chunk encoder behind it, and the client's direct
 * reader (clients/node/output-reader.ts): the same messages and errors as
 * Connect's own pipeline, byte for byte where bytes are compared.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { create, type DescMessage, type MessageShape, toBinary, toJson } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { afterAll, describe, expect, it } from "vitest";
import { createStepqClient } from "../clients/node/client.js";
import { JobService, StreamJobOutputResponseSchema } from "../gen/stepq/v1/job_service_pb.js";
import { StepService, StreamNarrationResponseSchema, StreamTokensRequestSchema, StreamTokensResponseSchema } from "../gen/stepq/v1/step_service_pb.js";
import type { JobView } from "../queue/queue.js";
import { toTokenChunk } from "../server/convert.js";
import { createOutputLane } from "../server/output-lane.js";
import { encodeTokensResponse, type TokensEntry, tokensMessage } from "../server/output-streams.js";
import { createStreamSlots } from "../server/stream-limit.js";

import { echo, useStack } from "./helpers/stack.js";

const stack = await useStack();
const worker = await stack.worker({ concurrency: 4 });
void worker.runForever();

/** Connect's pipeline: gRPC-Web never takes the direct writer. */
const viaConnect = createGrpcWebTransport({ baseUrl: stack.server.url, httpVersion: "1.1" });
/** The direct writer: Connect protocol, binary, what the generated Node client sends by default. */
const viaLane = createConnectTransport({ baseUrl: stack.server.url, httpVersion: "1.1" });

async function collect<S extends DescMessage>(schema: S, stream: AsyncIterable<MessageShape<S>>): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const m of stream) out.push(toJson(schema, m));
  return out;
}

describe("the direct writer sends what Connect's handlers send", () => {
  it("StreamJobOutput, StreamTokens and StreamNarration give the same messages both ways, for a job whose step failed once and was retried", async () => {
    const { job } = await stack.client.jobs.submitJob({
      steps: [
        { name: "first", operation: echo({ text: "héllo wörld ✓", tokenCount: 40, failMessage: "once", failAttempts: 1 }), retry: { maxAttempts: 2, initialBackoffMs: 10 } },
        { name: "second", operation: echo({ text: "", tokenCount: 3 }), dependsOn: ["first"] },
      ],
    });
    await stack.client.wait(job!.steps[1]!.id);
    const lane = { jobs: createClient(JobService, viaLane), steps: createClient(StepService, viaLane) };
    const connect = { jobs: createClient(JobService, viaConnect), steps: createClient(StepService, viaConnect) };
    const jobId = job!.id;
    const stepId = job!.steps[0]!.id;

    const output = await collect(StreamJobOutputResponseSchema, lane.jobs.streamJobOutput({ jobId }));
    expect(output).toEqual(await collect(StreamJobOutputResponseSchema, connect.jobs.streamJobOutput({ jobId })));
    const cases = output.map((m) => Object.keys((m as Record<string, unknown>))[0]);
    expect(cases).toContain("tokens");
    expect(cases).toContain("restart");
    expect(cases.at(-1)).toBe("jobEnd");

    const tokens = await collect(StreamTokensResponseSchema, lane.steps.streamTokens({ stepId }));
    expect(tokens).toEqual(await collect(StreamTokensResponseSchema, connect.steps.streamTokens({ stepId })));
    expect(tokens.length).toBeGreaterThan(2);

    const narration = await collect(StreamNarrationResponseSchema, lane.steps.streamNarration({ stepId }));
    expect(narration).toEqual(await collect(StreamNarrationResponseSchema, connect.steps.streamNarration({ stepId })));
    expect(narration.length).toBeGreaterThan(1);

    // Resuming mid-stream from a cursor: the same tail both ways.
    const middle = (output[Math.floor(output.length / 2)] as { tokens?: { cursor: string } }).tokens?.cursor ?? "";
    expect(await collect(StreamJobOutputResponseSchema, lane.jobs.streamJobOutput({ jobId, afterCursor: middle }))).toEqual(
      await collect(StreamJobOutputResponseSchema, connect.jobs.streamJobOutput({ jobId, afterCursor: middle })),
    );
  });

  it("a token chunk encoded by hand has exactly the bytes toBinary writes, for both response types", () => {
    const job = { id: "0000a1b2c3d4e5f6", steps: [{ name: "main" }, { name: "" }, { name: "ünïcode ✓" }] } as unknown as JobView;
    const entries: TokensEntry[] = [
      { kind: "tokens", cursor: "1700000000000-0", time: 0, stepIndex: 0, attempt: 1, firstIndex: 0, texts: ["a", "", " b"] },
      { kind: "tokens", cursor: "1700000000001-12", time: 0, stepIndex: 1, attempt: 0, firstIndex: 127, texts: ["x".repeat(200)] },
      { kind: "tokens", cursor: "1700000000002-0", time: 0, stepIndex: 2, attempt: 300, firstIndex: 2 ** 31, texts: ["é", "🙂", "\u0000"] },
      { kind: "tokens", cursor: "", time: 0, stepIndex: 7, attempt: 2, firstIndex: 5, texts: [] },
    ];
    for (const schema of [StreamJobOutputResponseSchema, StreamTokensResponseSchema]) {
      for (const e of entries) {
        const expected = toBinary(schema, tokensMessage(schema, toTokenChunk(job, e)) as never);
        expect(Buffer.from(encodeTokensResponse(schema, job, e)).toString("hex")).toBe(Buffer.from(expected).toString("hex"));
      }
    }
  });

  it("a follower that stops reading for a while still gets every token once, in order, when it reads again", async () => {
    const step = await stack.client.submit(echo({ text: "abcdefgh ", tokenCount: 40_000 }));
    const stream = createClient(StepService, viaLane).streamTokens({ stepId: step.id });
    const it = stream[Symbol.asyncIterator]();
    const first = await it.next();
    await new Promise((r) => setTimeout(r, 1500)); // the step runs on; the socket and the hub fill up
    let next = 0;
    const take = (res: MessageShape<typeof StreamTokensResponseSchema>) => {
      if (res.event.case !== "tokens") return;
      for (const t of res.event.value.tokens) expect(t.index).toBe(next++);
    };
    take(first.value);
    for (let r = await it.next(); !r.done; r = await it.next()) take(r.value);
    expect(next).toBe(40_000);
  });
});

describe("which requests the direct writer takes", () => {
  const lane = createOutputLane(stack.server as never, { slots: createStreamSlots(10), readMaxBytes: 1000, log: () => {} });
  const seen: { path: string; taken: boolean }[] = [];
  const probe = createServer((req, res) => {
    const taken = lane.handle(req, res);
    seen.push({ path: req.url ?? "", taken });
    if (!taken) res.writeHead(404).end();
  });
  afterAll(() => new Promise((r) => probe.close(r)));

  async function taken(path: string, headers: Record<string, string>, body = Buffer.from([0, 0, 0, 0, 0])): Promise<boolean> {
    if (!probe.listening) await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
    const port = (probe.address() as AddressInfo).port;
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { method: "POST", headers, body });
    await res.arrayBuffer();
    return seen.at(-1)?.taken ?? false;
  }
  const proto = { "content-type": "application/connect+proto" };

  it("takes Connect binary requests for the three output streams, and nothing else", async () => {
    expect(await taken("/stepq.v1.JobService/StreamJobOutput", proto)).toBe(true);
    expect(await taken("/stepq.v1.StepService/StreamTokens", proto)).toBe(true);
    expect(await taken("/stepq.v1.StepService/StreamNarration", { ...proto, "connect-protocol-version": "1" })).toBe(true);
    expect(await taken("/stepq.v1.JobService/WatchJob", proto)).toBe(false);
    expect(await taken("/stepq.v1.StepService/StreamTokens", { "content-type": "application/connect+json" })).toBe(false);
    expect(await taken("/stepq.v1.StepService/StreamTokens", { "content-type": "application/grpc-web+proto" })).toBe(false);
    expect(await taken("/stepq.v1.StepService/StreamTokens", { ...proto, "connect-content-encoding": "gzip" })).toBe(false);
    expect(await taken("/stepq.v1.StepService/StreamTokens", { ...proto, "connect-timeout-ms": "5000" })).toBe(false);
    expect(await taken("/stepq.v1.StepService/StreamTokens", { ...proto, "connect-protocol-version": "2" })).toBe(false);
  });
});

describe("bad requests to the direct writer", () => {
  /** POSTs `body` to StreamTokens as Connect binary and returns the end-of-stream error. */
  async function endError(body: Buffer): Promise<{ code: string; message: string }> {
    const res = await fetch(`${stack.server.url}/stepq.v1.StepService/StreamTokens`, {
      method: "POST",
      headers: { "content-type": "application/connect+proto" },
      body,
    });
    expect(res.status).toBe(200);
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(bytes[0]).toBe(2); // the end-of-stream flag
    expect(bytes.readUInt32BE(1)).toBe(bytes.length - 5);
    return (JSON.parse(bytes.subarray(5).toString()) as { error: { code: string; message: string } }).error;
  }
  const enveloped = (message: Buffer, flags = 0) => {
    const head = Buffer.alloc(5);
    head[0] = flags;
    head.writeUInt32BE(message.length, 1);
    return Buffer.concat([head, message]);
  };

  it("an empty body is UNIMPLEMENTED: a server stream needs exactly one request message", async () => {
    expect(await endError(Buffer.alloc(0))).toEqual({ code: "unimplemented", message: "protocol error: missing input message for server-streaming method" });
  });
  it("two request messages are UNIMPLEMENTED", async () => {
    expect(await endError(Buffer.concat([enveloped(Buffer.alloc(0)), enveloped(Buffer.alloc(0))]))).toEqual({
      code: "unimplemented",
      message: "protocol error: received extra input message for server-streaming method",
    });
  });
  it("a cut envelope is INVALID_ARGUMENT", async () => {
    expect(await endError(Buffer.from([0, 0, 0]))).toEqual({ code: "invalid_argument", message: "protocol error: incomplete envelope" });
    expect(await endError(enveloped(Buffer.from("abc")).subarray(0, 6))).toEqual({ code: "invalid_argument", message: "protocol error: incomplete envelope" });
  });
  it("a message flagged compressed without connect-content-encoding is INVALID_ARGUMENT and says what to send", async () => {
    const err = await endError(enveloped(Buffer.from([0x0a, 0x01, 0x61]), 1));
    expect(err.code).toBe("invalid_argument");
    expect(err.message).toBe(
      "protocol error: the request envelope has flags 0x01; send one uncompressed message (flags 0x00), or name its compression in connect-content-encoding",
    );
  });
  it("bytes that are not a StreamTokensRequest are INVALID_ARGUMENT and name the message type", async () => {
    const err = await endError(enveloped(Buffer.from([0x0a, 0x09, 0x61])));
    expect(err.code).toBe("invalid_argument");
    expect(err.message).toMatch(/^the request is not a valid stepq\.v1\.StreamTokensRequest in protobuf binary: /);
  });
  it("a request over the server's size limit is RESOURCE_EXHAUSTED and names the limit", async () => {
    const small = await useStack({ maxRequestBytes: 64 });
    const res = await fetch(`${small.server.url}/stepq.v1.StepService/StreamTokens`, {
      method: "POST",
      headers: { "content-type": "application/connect+proto" },
      body: enveloped(Buffer.concat([Buffer.from([0x0a, 100]), Buffer.alloc(100, 0x61)])),
    });
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(JSON.parse(bytes.subarray(5).toString()).error).toEqual({
      code: "resource_exhausted",
      message:
        "the request message is 107 bytes, over this server's limit of 64 bytes (--max-request-bytes); " +
        "send a smaller request (fewer steps per SubmitSteps or SubmitJob call, shorter inputs)",
    });
  });
  it("a bad step id is INVALID_ARGUMENT from the handler's own checks, the same as through Connect", async () => {
    const message = Buffer.from(toBinary(StreamTokensRequestSchema, create(StreamTokensRequestSchema, { stepId: "abc" })));
    const err = await endError(enveloped(message));
    expect(err.code).toBe("invalid_argument");
    expect(err.message).toMatch(/^step_id: "abc" is not a step id/);
  });
});

describe("the client's direct reader", () => {
  it("follow() reports the server's end-of-stream error with its code and message", async () => {
    const err = await (async () => {
      try {
        for await (const _ of stack.client.follow("0000zzzzabcdabcd.0")) {
          /* nothing */
        }
      } catch (e) {
        return ConnectError.from(e);
      }
      throw new Error("follow did not fail");
    })();
    expect(err.code).toBe(Code.NotFound);
    expect(err.rawMessage).toMatch(/^step 0000zzzzabcdabcd\.0 not found/); // follow() asks for the one step (StreamJobOutput step_id)
  });

  it("follow() against a URL that is not a stepq server fails with the HTTP status's code, without retrying", async () => {
    let reconnects = 0;
    const client = createStepqClient({ baseUrl: `${stack.server.url}/not-here` });
    const err = await (async () => {
      try {
        for await (const _ of client.follow("0000zzzzabcdabcd.0", { onReconnect: () => reconnects++ })) {
          /* nothing */
        }
      } catch (e) {
        return ConnectError.from(e);
      }
      throw new Error("follow did not fail");
    })();
    expect(err.code).toBe(Code.Unimplemented); // HTTP 404
    expect(reconnects).toBe(0);
  });

  it("follow() stops at once when the caller aborts, with CANCELED", async () => {
    const step = await stack.client.submit(echo({ text: "slow ", tokenCount: 50, tokenDelayMs: 50 }));
    const abort = new AbortController();
    const err = await (async () => {
      try {
        for await (const e of stack.client.follow(step.id, { signal: abort.signal })) if (e.type === "tokens") abort.abort();
      } catch (e) {
        return ConnectError.from(e);
      }
      throw new Error("follow did not fail");
    })();
    expect(err.code).toBe(Code.Canceled);
  });
});
