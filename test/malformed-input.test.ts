/**
 * Requests that no generated client sends: bytes that are not the request
 * message, compression that lies, queries that do not decode, and deadlines
 * that pass mid-stream. Each gets a client error code that says what was
 * wrong and what to send instead, over every protocol, and none is logged as
 * a server fault.
 */
import { createServer, request as httpRequest } from "node:http";
import { connect as http2Connect, constants } from "node:http2";
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";
import { create, toBinary } from "@bufbuild/protobuf";
import { base64Encode } from "@bufbuild/protobuf/wire";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { connectNodeAdapter, createConnectTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { createStepqClient } from "../clients/node/client.js";
import { WatchJobRequestSchema } from "../gen/stepq/v1/job_service_pb.js";
import {
  GetStepRequestSchema,
  GetStepResponseSchema,
  StepService,
  StreamNarrationResponseSchema,
  StreamTokensRequestSchema,
  WatchStepsRequestSchema,
} from "../gen/stepq/v1/step_service_pb.js";
import { createLogger } from "../runtime/logger.js";
import { createErrorInterceptor } from "../server/errors.js";
import { envelope, type Protocol, rawGet, rawPost } from "./helpers/raw-rpc.js";
import { echo, eventually, useStack } from "./helpers/stack.js";

const logged: string[] = [];
const logger = createLogger("test", { level: "error", write: (line) => logged.push(line) });
/** Few stream slots, so a stream that kept its slot after its deadline would soon lock others out. */
const MAX_STREAMS = 8;
const stack = await useStack({ logger, maxStreams: MAX_STREAMS });
const base = stack.server.url;
const worker = await stack.worker({ concurrency: 4 });
void worker.runForever();

const GET_STEP = "stepq.v1.StepService/GetStep";
const WATCH_JOB = "stepq.v1.JobService/WatchJob";
/** Not a protobuf message: a field tag whose varint never ends. */
const GARBAGE = new Uint8Array([0xff, 0xff, 0xff, 0xff]);
const NOT_GZIP = new TextEncoder().encode("this is not gzip data");
const TRUNCATED_GZIP = gzipSync(Buffer.from(toBinary(GetStepRequestSchema, create(GetStepRequestSchema, { stepId: "0000zzzzabcdabcd.0" })))).subarray(0, 12);

/** Unary and streaming calls in every protocol that carries binary messages. */
const cases: { name: string; protocol: Protocol; path: string; type: string }[] = [
  { name: "Connect unary", protocol: "connect", path: GET_STEP, type: "stepq.v1.GetStepRequest" },
  { name: "Connect streaming", protocol: "connect-stream", path: WATCH_JOB, type: "stepq.v1.WatchJobRequest" },
  { name: "gRPC unary", protocol: "grpc", path: GET_STEP, type: "stepq.v1.GetStepRequest" },
  { name: "gRPC streaming", protocol: "grpc", path: WATCH_JOB, type: "stepq.v1.WatchJobRequest" },
  { name: "gRPC-Web unary", protocol: "grpc-web", path: GET_STEP, type: "stepq.v1.GetStepRequest" },
  { name: "gRPC-Web streaming", protocol: "grpc-web", path: WATCH_JOB, type: "stepq.v1.WatchJobRequest" },
];
const enveloped = (p: Protocol) => p !== "connect";
const encodingHeader = (p: Protocol) => (p === "connect" ? "content-encoding" : p === "connect-stream" ? "connect-content-encoding" : "grpc-encoding");

/** Expects INVALID_ARGUMENT with a message matching every pattern, and nothing logged as unexpected. */
function expectInvalid(reply: { code: number; message: string }, ...patterns: RegExp[]) {
  expect(reply.code, reply.message).toBe(Code.InvalidArgument);
  for (const p of patterns) expect(reply.message).toMatch(p);
  expect(logged).toEqual([]);
}

describe("bytes that are not the request message are INVALID_ARGUMENT over every protocol", () => {
  for (const c of cases) {
    it(`${c.name}: an undecodable protobuf body names the type and says what to send`, async () => {
      const body = enveloped(c.protocol) ? envelope(GARBAGE) : GARBAGE;
      expectInvalid(await rawPost(base, c.path, c.protocol, body), new RegExp(`not a valid ${c.type.replaceAll(".", "\\.")} in protobuf binary`), /JSON/);
    });

    if (enveloped(c.protocol)) {
      it(`${c.name}: the compressed flag without an encoding names the header to send`, async () => {
        const body = envelope(toBinary(GetStepRequestSchema, create(GetStepRequestSchema, { stepId: "x" })), 0x01);
        expectInvalid(await rawPost(base, c.path, c.protocol, body), /compressed flag/, new RegExp(encodingHeader(c.protocol)));
      });
    }

    it(`${c.name}: a body that claims gzip but is not gzip says so`, async () => {
      const body = enveloped(c.protocol) ? envelope(NOT_GZIP, 0x01) : NOT_GZIP;
      expectInvalid(await rawPost(base, c.path, c.protocol, body, { [encodingHeader(c.protocol)]: "gzip" }), /not valid gzip/, /gzip/);
    });

    it(`${c.name}: a gzip body cut short says so`, async () => {
      const body = enveloped(c.protocol) ? envelope(TRUNCATED_GZIP, 0x01) : TRUNCATED_GZIP;
      expectInvalid(await rawPost(base, c.path, c.protocol, body, { [encodingHeader(c.protocol)]: "gzip" }), /not valid gzip/);
    });
  }

  it("a gzip bomb (9 MiB from 9 KiB) is RESOURCE_EXHAUSTED naming the limit, in unary calls and streams", async () => {
    const bomb = gzipSync(Buffer.alloc(9 * 1024 * 1024));
    for (const [protocol, path] of [["connect", GET_STEP], ["grpc", WATCH_JOB], ["grpc-web", GET_STEP]] as const) {
      const body = enveloped(protocol) ? envelope(bomb, 0x01) : bomb;
      const reply = await rawPost(base, path, protocol, body, { [encodingHeader(protocol)]: "gzip" });
      expect(reply.code, reply.message).toBe(Code.ResourceExhausted);
      expect(reply.message).toMatch(/^the request message is, once decompressed, over this server's limit of 8388608 bytes \(--max-request-bytes\)/);
    }
    expect(logged).toEqual([]);
  });

  it("a brotli body that is not brotli says so", async () => {
    expectInvalid(await rawPost(base, GET_STEP, "connect", NOT_GZIP, { "content-encoding": "br" }), /not valid br/);
  });

  it("a streaming request whose envelope is cut short is INVALID_ARGUMENT", async () => {
    const whole = envelope(toBinary(WatchJobRequestSchema, create(WatchJobRequestSchema, { jobId: "0000zzzzabcdabcd" })));
    expectInvalid(await rawPost(base, WATCH_JOB, "grpc", whole.subarray(0, whole.length - 3)), /envelope/);
  });

  it("a unary request whose envelope is cut short is INVALID_ARGUMENT", async () => {
    const whole = envelope(toBinary(GetStepRequestSchema, create(GetStepRequestSchema, { stepId: "0000zzzzabcdabcd.0" })));
    expectInvalid(await rawPost(base, GET_STEP, "grpc", whole.subarray(0, whole.length - 3)), /envelope/);
    expectInvalid(await rawPost(base, GET_STEP, "grpc-web", whole.subarray(0, 9)), /envelope/);
  });

  it("a GET whose base64 message does not decode names the message parameter", async () => {
    expectInvalid(await rawGet(base, GET_STEP, { encoding: "proto", base64: "1", message: "%%%%" }), /^message: /, /base64/);
  });

  it("a GET whose base64 message is not the request message names the type", async () => {
    expectInvalid(await rawGet(base, GET_STEP, { encoding: "proto", base64: "1", message: base64Encode(GARBAGE, "url") }), /not a valid stepq\.v1\.GetStepRequest in protobuf binary/);
  });

  it("a timeout header that is not a timeout says what it takes", async () => {
    expectInvalid(await rawPost(base, GET_STEP, "connect", GARBAGE, { "connect-timeout-ms": "soon" }), /^connect-timeout-ms: "soon" is not a timeout; send the deadline in milliseconds/);
    expectInvalid(await rawPost(base, WATCH_JOB, "connect-stream", envelope(GARBAGE), { "connect-timeout-ms": "-1" }), /^connect-timeout-ms: "-1" is not a timeout/);
    expectInvalid(await rawPost(base, GET_STEP, "grpc", envelope(GARBAGE), { "grpc-timeout": "5 seconds" }), /^grpc-timeout: "5 seconds" is not a timeout; send 1 to 8 digits and a unit/);
    expectInvalid(await rawPost(base, WATCH_JOB, "grpc-web", envelope(GARBAGE), { "grpc-timeout": "1x" }), /^grpc-timeout: "1x" is not a timeout/);
  });

  it("a GET without a message says the request is empty", async () => {
    expectInvalid(await rawGet(base, GET_STEP, { encoding: "json" }), /^the request is empty; send a JSON object with the fields of stepq\.v1\.GetStepRequest/);
  });

  it("the server still answers well-formed calls afterwards", async () => {
    const step = await stack.client.submit(echo({ text: "still here" }));
    expect((await stack.client.wait(step.id)).result?.text).toBe("still here");
  });
});

describe("a stream whose deadline passes ends with DEADLINE_EXCEEDED and releases what it held", () => {
  /** A step that streams a token every 100 ms for 20 s (cancelled by each test). */
  const slowStep = () => stack.client.submit(echo({ text: "slow", tokenCount: 200, tokenDelayMs: 100 }));
  const streams = [
    { rpc: "StreamTokens", min: 1, path: "stepq.v1.StepService/StreamTokens", request: (s: { id: string }) => toBinary(StreamTokensRequestSchema, create(StreamTokensRequestSchema, { stepId: s.id })) },
    { rpc: "WatchJob", min: 1, path: WATCH_JOB, request: (s: { jobId: string }) => toBinary(WatchJobRequestSchema, create(WatchJobRequestSchema, { jobId: s.jobId })) },
    // The step's events came before the watch: nothing to report until the deadline.
    { rpc: "WatchSteps", min: 0, path: "stepq.v1.StepService/WatchSteps", request: (s: { id: string }) => toBinary(WatchStepsRequestSchema, create(WatchStepsRequestSchema, { stepIds: [s.id] })) },
  ];
  const deadlines = [
    { protocol: "connect-stream" as const, header: { "connect-timeout-ms": "600" } as Record<string, string> },
    { protocol: "grpc" as const, header: { "grpc-timeout": "600m" } as Record<string, string> },
  ];

  for (const s of streams) {
    for (const d of deadlines) {
      it(`${s.rpc} over ${d.protocol} (${Object.keys(d.header)[0]}): the server ends the stream with DEADLINE_EXCEEDED, not OK`, async () => {
        const step = await slowStep();
        const reply = await rawPost(base, s.path, d.protocol, envelope(s.request(step)), d.header);
        await stack.client.steps.cancelStep({ stepId: step.id });
        expect(reply.code, reply.message).toBe(Code.DeadlineExceeded);
        expect(reply.message).toMatch(/deadline/);
        expect(reply.messages).toBeGreaterThanOrEqual(s.min);
      });
    }
  }

  for (const protocol of ["connect", "grpc"] as const) {
    it(`the typed client over ${protocol}: a follower with a deadline gets tokens, then DEADLINE_EXCEEDED`, async () => {
      const client = createStepqClient({ baseUrl: base, protocol });
      const step = await slowStep();
      let received = 0;
      const error = await (async () => {
        try {
          for await (const _ of client.steps.streamTokens({ stepId: step.id }, { timeoutMs: 600 })) received++;
        } catch (e) {
          return ConnectError.from(e);
        }
      })();
      await stack.client.steps.cancelStep({ stepId: step.id });
      expect(error?.code).toBe(Code.DeadlineExceeded);
      expect(received).toBeGreaterThan(0);
    });
  }

  it("every stream that ended at its deadline let go of its log subscription and its stream slot", async () => {
    await eventually(async () => stack.server.hub.size, (n) => n === 0);
    const body = envelope(toBinary(WatchStepsRequestSchema, create(WatchStepsRequestSchema, { routes: ["infer:nothing-runs-here"] })));
    const all = await Promise.all(Array.from({ length: MAX_STREAMS }, () => rawPost(base, "stepq.v1.StepService/WatchSteps", "grpc", body, { "grpc-timeout": "200m" })));
    expect(all.map((r) => r.code)).toEqual(Array(MAX_STREAMS).fill(Code.DeadlineExceeded));
    expect(logged).toEqual([]);
  });
});

describe("a deadline that passes before the stream starts", () => {
  it("ends the stream with DEADLINE_EXCEEDED at once and leaves no subscription behind", async () => {
    const step = await stack.client.submit(echo({ text: "slow", tokenCount: 200, tokenDelayMs: 100 }));
    const body = envelope(toBinary(StreamTokensRequestSchema, create(StreamTokensRequestSchema, { stepId: step.id })));
    const replies = await Promise.all(
      Array.from({ length: MAX_STREAMS }, (_, i) =>
        rawPost(base, "stepq.v1.StepService/StreamTokens", i % 2 ? "grpc" : "connect-stream", body, i % 2 ? { "grpc-timeout": "1m" } : { "connect-timeout-ms": "1" }),
      ),
    );
    await stack.client.steps.cancelStep({ stepId: step.id });
    for (const r of replies) expect(r.code, r.message).toBe(Code.DeadlineExceeded);
    await eventually(async () => stack.server.hub.size, (n) => n === 0);
  });
});

describe("what is logged", () => {
  it("a client that resets or drops a stream mid-way (any reset code) is not logged as a server fault", async () => {
    const step = await stack.client.submit(echo({ text: "a b c", tokenCount: 2000, tokenDelayMs: 2 }));
    const body = envelope(toBinary(StreamTokensRequestSchema, create(StreamTokensRequestSchema, { stepId: step.id })));
    const resetAfterFirstData = (code: number, contentType: string) =>
      new Promise<void>((resolve, reject) => {
        const session = http2Connect(base);
        const req = session.request({ ":method": "POST", ":path": "/stepq.v1.StepService/StreamTokens", "content-type": contentType, te: "trailers", "grpc-timeout": "10S", "connect-timeout-ms": "10000" });
        req.once("data", () => {
          req.close(code);
          session.close();
          resolve();
        });
        req.on("error", reject);
        req.end(body);
      });
    const dropAfterFirstData = () =>
      new Promise<void>((resolve) => {
        const req = httpRequest(`${base}/stepq.v1.StepService/StreamTokens`, { method: "POST", headers: { "content-type": "application/grpc-web+proto" } }, (res) => {
          res.once("data", () => {
            req.destroy();
            resolve();
          });
        });
        req.on("error", () => {});
        req.end(body);
      });
    await Promise.all([
      resetAfterFirstData(constants.NGHTTP2_INTERNAL_ERROR, "application/grpc"),
      resetAfterFirstData(constants.NGHTTP2_PROTOCOL_ERROR, "application/connect+proto"),
      resetAfterFirstData(constants.NGHTTP2_CANCEL, "application/grpc"),
      dropAfterFirstData(),
    ]);
    await eventually(async () => stack.server.hub.size, (n) => n === 0);
    await stack.client.steps.cancelStep({ stepId: step.id });
    expect(logged).toEqual([]);
  });

  it("an INTERNAL that Connect raises after the handler (a reply that cannot be encoded) is logged with its cause", async () => {
    const errors: Error[] = [];
    // A deliberately broken service behind the real error interceptor, over real HTTP.
    const broken = connectNodeAdapter({
      routes(router) {
        router.rpc(StepService.method.getStep, () => create(GetStepResponseSchema, { step: { attempt: -1 } }));
        router.rpc(StepService.method.streamNarration, async function* () {
          yield create(StreamNarrationResponseSchema, { event: { case: "narration", value: { attempt: -2 } } });
        });
      },
      interceptors: [createErrorInterceptor((err) => errors.push(err))],
    });
    const server = createServer(broken);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const client = createClient(StepService, createConnectTransport({ baseUrl: url, httpVersion: "1.1" }));
      await expect(client.getStep({ stepId: "x" })).rejects.toMatchObject({ code: Code.Internal });
      await expect((async () => {
        for await (const _ of client.streamNarration({ stepId: "x" }, { timeoutMs: 5000 })) {
          /* drain */
        }
      })()).rejects.toMatchObject({ code: Code.Internal });
      expect(errors.map((e) => e.message)).toEqual([
        expect.stringMatching(/serialize binary: cannot encode field stepq\.v1\.Step\.attempt .*invalid uint32: -1/),
        expect.stringMatching(/^a stepq\.v1\.StreamNarrationResponse reply could not be encoded .*stepq\.v1\.Narration\.attempt .*invalid uint32: -2/),
      ]);
    } finally {
      server.close();
    }
  });
});
