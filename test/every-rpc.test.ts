/**
 * Every RPC, asked the way a careless client asks: with nothing, with every
 * field wrong, and at the edge of each limit (the limit itself is accepted,
 * one past it is refused). Each refusal has the right code and a message
 * that names the field and, for a limit, the limit.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { EchoOperationSchema, OperationSchema } from "../gen/stepq/v1/operation_pb.js";
import { postJson } from "./helpers/json-rpc.js";
import { envelope, rawPost } from "./helpers/raw-rpc.js";
import { useStack } from "./helpers/stack.js";

const MAX_OPERATION_BYTES = 64 * 1024;
const MAX_REQUEST_BYTES = 1024 * 1024;
const stack = await useStack({ limits: { maxOperationBytes: MAX_OPERATION_BYTES, maxStepsPerJob: 5 }, maxRequestBytes: MAX_REQUEST_BYTES });
const base = stack.server.url;
const DAY_MS = 24 * 3600 * 1000;

const STREAMS = new Set(["StreamTokens", "StreamNarration", "WatchSteps", "WatchJob", "StreamJobOutput"]);
const SERVICE: Record<string, string> = {
  SubmitStep: "StepService",
  SubmitSteps: "StepService",
  GetStep: "StepService",
  ListSteps: "StepService",
  CancelStep: "StepService",
  RetryStep: "StepService",
  PurgeStep: "StepService",
  StreamTokens: "StepService",
  StreamNarration: "StepService",
  WatchSteps: "StepService",
  SubmitJob: "JobService",
  GetJob: "JobService",
  ListJobs: "JobService",
  CancelJob: "JobService",
  WatchJob: "JobService",
  StreamJobOutput: "JobService",
};

/** Calls `rpc` with JSON `body` over Connect (streams with a 300 ms deadline, since WatchSteps never ends). */
async function call(rpc: string, body: unknown): Promise<{ code: string; message: string }> {
  const path = `stepq.v1.${SERVICE[rpc]}/${rpc}`;
  if (!STREAMS.has(rpc)) {
    const reply = await postJson(base, path, body);
    return { code: reply.status === 200 ? "ok" : String(reply.body.code), message: reply.body.message ?? "" };
  }
  const reply = await rawPost(base, path, "connect-stream", envelope(JSON.stringify(body)), {
    "content-type": "application/connect+json",
    "connect-timeout-ms": "300",
  });
  const names: Record<number, string> = { 0: "ok", [Code.InvalidArgument]: "invalid_argument", [Code.NotFound]: "not_found", [Code.DeadlineExceeded]: "deadline_exceeded" };
  return { code: names[reply.code] ?? `code ${reply.code}`, message: reply.message };
}

async function expectAnswer(rpc: string, body: unknown, code: string, pattern?: RegExp) {
  const reply = await call(rpc, body);
  expect(reply.code, `${rpc}: ${reply.message}`).toBe(code);
  if (pattern) expect(reply.message).toMatch(pattern);
}

describe("every RPC with an empty request", () => {
  const expected: [string, string, RegExp?][] = [
    ["SubmitStep", "invalid_argument", /^operation: is required: set exactly one of infer, embed or echo$/],
    ["SubmitSteps", "invalid_argument", /^requests: is empty: send 1 to 1000 steps$/],
    ["GetStep", "invalid_argument", /^step_id: is required$/],
    ["ListSteps", "ok"],
    ["CancelStep", "invalid_argument", /^step_id: is required$/],
    ["RetryStep", "invalid_argument", /^step_id: is required$/],
    ["PurgeStep", "invalid_argument", /^step_id: is required$/],
    ["StreamTokens", "invalid_argument", /^step_id: is required$/],
    ["StreamNarration", "invalid_argument", /^step_id: is required$/],
    // Every event of the queue, from now: nothing happens before the deadline.
    ["WatchSteps", "deadline_exceeded", /deadline/],
    ["SubmitJob", "invalid_argument", /^steps: a job needs at least one step$/],
    ["GetJob", "invalid_argument", /^job_id: is required$/],
    ["ListJobs", "ok"],
    ["CancelJob", "invalid_argument", /^job_id: is required$/],
    ["WatchJob", "invalid_argument", /^job_id: is required$/],
    ["StreamJobOutput", "invalid_argument", /^job_id: is required$/],
  ];
  it("covers every RPC", () => expect(expected.map(([rpc]) => rpc).sort()).toEqual(Object.keys(SERVICE).sort()));
  for (const [rpc, code, pattern] of expected) it(`${rpc} {} answers ${code}`, () => expectAnswer(rpc, {}, code, pattern));
});

describe("every RPC with every field wrong names one of the fields", () => {
  const badStep = {
    operation: { echo: { tokenCount: 2_000_000 } },
    priority: 5000,
    idempotencyKey: "a b",
    retry: { maxAttempts: 500 },
    timeoutMs: 4_000_000_000,
    queueTimeoutMs: 4_000_000_000,
    notBefore: "2999-01-01T00:00:00Z",
    labels: { "bad key": "v" },
  };
  const stepFields = "operation|priority|idempotency_key|retry|timeout_ms|queue_timeout_ms|not_before|labels";
  const cases: [string, unknown, RegExp][] = [
    ["SubmitStep", badStep, new RegExp(`^(${stepFields})[.:\\[]`)],
    ["SubmitSteps", { requests: [badStep] }, new RegExp(`^requests\\[0\\]\\.(${stepFields})[.:\\[]`)],
    ["GetStep", { stepId: "nope" }, /^step_id: "nope" is not a step id/],
    ["ListSteps", { state: 99, route: "r".repeat(300), pageSize: 9999, pageToken: "garbage" }, /^(state|route|page_size|page_token): /],
    ["CancelStep", { stepId: "nope", reason: "r".repeat(300) }, /^(step_id|reason): /],
    ["RetryStep", { stepId: "nope" }, /^step_id: /],
    ["PurgeStep", { stepId: "nope" }, /^step_id: /],
    ["StreamTokens", { stepId: "nope", afterCursor: "garbage" }, /^(step_id|after_cursor): /],
    ["StreamNarration", { stepId: "nope", afterCursor: "garbage" }, /^(step_id|after_cursor): /],
    ["WatchSteps", { stepIds: ["nope"], jobId: "x", types: [99], afterCursor: "garbage" }, /^(step_ids\[0\]|job_id|types\[0\]|after_cursor): /],
    [
      "SubmitJob",
      {
        steps: [{ name: "bad name!", operation: {}, dependsOn: ["zz"], retry: { maxAttempts: 500 }, timeoutMs: 4_000_000_000 }],
        priority: 5000,
        idempotencyKey: "a b",
        failurePolicy: 9,
        labels: { "bad key": "v" },
        notBefore: "2999-01-01T00:00:00Z",
      },
      /^(steps|priority|idempotency_key|failure_policy|labels|not_before)[.:\[]/,
    ],
    ["GetJob", { jobId: "nope" }, /^job_id: "nope" is not a job id/],
    ["ListJobs", { state: 99, pageSize: 9999, pageToken: "garbage" }, /^(state|page_size|page_token): /],
    ["CancelJob", { jobId: "nope", reason: "r".repeat(300) }, /^(job_id|reason): /],
    ["WatchJob", { jobId: "nope", afterCursor: "garbage" }, /^(job_id|after_cursor): /],
    ["StreamJobOutput", { jobId: "nope", afterCursor: "garbage" }, /^(job_id|after_cursor): /],
  ];
  it("covers every RPC", () => expect(cases.map(([rpc]) => rpc).sort()).toEqual(Object.keys(SERVICE).sort()));
  for (const [rpc, body, pattern] of cases) it(`${rpc} answers INVALID_ARGUMENT naming a field`, () => expectAnswer(rpc, body, "invalid_argument", pattern));
});

describe("each limit: the limit is accepted, one past it is refused naming the field and the limit", () => {
  const echoStep = (extra: Record<string, unknown> = {}, echo: Record<string, unknown> = {}) => ({ operation: { echo: { text: "x", ...echo } }, priority: -1000, ...extra });
  const inferStep = (infer: Record<string, unknown>) => ({ operation: { infer: { model: "tiny", prompt: "hi", ...infer } }, priority: -1000 });
  const labels = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, "v"]));
  const job = (n: number, name = (i: number) => `s${i}`) => ({ steps: Array.from({ length: n }, (_, i) => ({ name: name(i), operation: { echo: {} } })), priority: -1000 });
  const yearAhead = (days: number) => new Date(Date.now() + days * DAY_MS).toISOString();
  /** An echo operation whose encoding is exactly `bytes` long. */
  const echoOfSize = (bytes: number) => {
    let n = bytes;
    while (toBinary(OperationSchema, create(OperationSchema, { kind: { case: "echo", value: create(EchoOperationSchema, { text: "x".repeat(n) }) } })).length > bytes) n--;
    return { operation: { echo: { text: "x".repeat(n) } }, priority: -1000 };
  };

  // [what, rpc, at the limit, one past it, code past it, message past it]
  const limits: [string, string, unknown, unknown, string, RegExp][] = [
    ["priority (high)", "SubmitStep", echoStep({ priority: 1000 }), echoStep({ priority: 1001 }), "invalid_argument", /^priority: must be an integer from -1000 to 1000 \(got 1001\)$/],
    ["priority (low)", "SubmitStep", echoStep({ priority: -1000 }), echoStep({ priority: -1001 }), "invalid_argument", /^priority: must be an integer from -1000 to 1000 \(got -1001\)$/],
    ["labels", "SubmitStep", echoStep({ labels: labels(32) }), echoStep({ labels: labels(33) }), "invalid_argument", /^labels: has 33 entries; at most 32$/],
    ["a label key", "SubmitStep", echoStep({ labels: { ["k".repeat(64)]: "v" } }), echoStep({ labels: { ["k".repeat(65)]: "v" } }), "invalid_argument", /^labels: key "k+" must be 1-64 characters/],
    ["a label value", "SubmitStep", echoStep({ labels: { k: "v".repeat(256) } }), echoStep({ labels: { k: "v".repeat(257) } }), "invalid_argument", /^labels\["k"\]: is 257 characters; at most 256$/],
    ["idempotency_key", "SubmitStep", echoStep({ idempotencyKey: "i".repeat(128) }), echoStep({ idempotencyKey: "i".repeat(129) }), "invalid_argument", /^idempotency_key: must be 1-128 printable ASCII characters/],
    ["retry.max_attempts", "SubmitStep", echoStep({ retry: { maxAttempts: 100 } }), echoStep({ retry: { maxAttempts: 101 } }), "invalid_argument", /^retry\.max_attempts: must be an integer from 1 to 100 \(got 101\)$/],
    ["retry.initial_backoff_ms", "SubmitStep", echoStep({ retry: { initialBackoffMs: DAY_MS } }), echoStep({ retry: { initialBackoffMs: DAY_MS + 1 } }), "invalid_argument", /^retry\.initial_backoff_ms: must be an integer from 1 to 86400000 ms/],
    ["timeout_ms", "SubmitStep", echoStep({ timeoutMs: DAY_MS }), echoStep({ timeoutMs: DAY_MS + 1 }), "invalid_argument", /^timeout_ms: must be an integer from 0 to 86400000 ms/],
    ["queue_timeout_ms", "SubmitStep", echoStep({ queueTimeoutMs: 7 * DAY_MS }), echoStep({ queueTimeoutMs: 7 * DAY_MS + 1 }), "invalid_argument", /^queue_timeout_ms: must be an integer from 0 to 604800000 ms/],
    ["not_before", "SubmitStep", echoStep({ notBefore: yearAhead(365) }), echoStep({ notBefore: yearAhead(367) }), "invalid_argument", /^not_before: is more than a year ahead$/],
    ["echo.token_count", "SubmitStep", echoStep({}, { tokenCount: 1_000_000 }), echoStep({}, { tokenCount: 1_000_001 }), "invalid_argument", /^operation\.echo\.token_count: must be between 0 and 1000000 \(got 1000001\)$/],
    ["echo.token_delay_ms", "SubmitStep", echoStep({}, { tokenDelayMs: 60_000 }), echoStep({}, { tokenDelayMs: 60_001 }), "invalid_argument", /^operation\.echo\.token_delay_ms: must be between 0 and 60000 ms/],
    ["echo.delay_ms", "SubmitStep", echoStep({}, { delayMs: 3_600_000 }), echoStep({}, { delayMs: 3_600_001 }), "invalid_argument", /^operation\.echo\.delay_ms: must be between 0 and 3600000 ms/],
    ["echo.fail_attempts", "SubmitStep", echoStep({}, { failAttempts: 100 }), echoStep({}, { failAttempts: 101 }), "invalid_argument", /^operation\.echo\.fail_attempts: must be between 0 and 100/],
    ["infer.max_tokens", "SubmitStep", inferStep({ maxTokens: 32768 }), inferStep({ maxTokens: 32769 }), "invalid_argument", /^operation\.infer\.max_tokens: 32769 is over this server's limit of 32768$/],
    ["infer.temperature", "SubmitStep", inferStep({ temperature: 2 }), inferStep({ temperature: 2.01 }), "invalid_argument", /^operation\.infer\.temperature: must be between 0 and 2/],
    ["infer.top_p", "SubmitStep", inferStep({ topP: 1 }), inferStep({ topP: 1.01 }), "invalid_argument", /^operation\.infer\.top_p: must be in \(0, 1\]/],
    ["infer.top_k", "SubmitStep", inferStep({ topK: 100_000 }), inferStep({ topK: 100_001 }), "invalid_argument", /^operation\.infer\.top_k: must be between 0 and 100000/],
    ["infer.stop", "SubmitStep", inferStep({ stop: Array(8).fill("x") }), inferStep({ stop: Array(9).fill("x") }), "invalid_argument", /^operation\.infer\.stop: at most 8 stop strings \(got 9\)$/],
    ["an infer.stop string", "SubmitStep", inferStep({ stop: ["s".repeat(64)] }), inferStep({ stop: ["s".repeat(65)] }), "invalid_argument", /^operation\.infer\.stop\[0\]: is 65 characters; at most 64$/],
    ["infer.model", "SubmitStep", inferStep({ model: "m".repeat(128) }), inferStep({ model: "m".repeat(129) }), "invalid_argument", /^operation\.infer\.model: "m{80}"… \(129 characters\) is not a valid model name \(1-128 characters/],
    [
      "embed.inputs",
      "SubmitStep",
      { operation: { embed: { model: "e", inputs: Array(256).fill("t") } }, priority: -1000 },
      { operation: { embed: { model: "e", inputs: Array(257).fill("t") } }, priority: -1000 },
      "invalid_argument",
      /^operation\.embed\.inputs: has 257 texts; at most 256 per step$/,
    ],
    ["an operation's encoded size", "SubmitStep", echoOfSize(MAX_OPERATION_BYTES), echoOfSize(MAX_OPERATION_BYTES + 1), "resource_exhausted", /^operation: 65537 bytes encoded, over this server's limit of 65536 bytes per step/],
    ["steps per job", "SubmitJob", job(5), job(6), "invalid_argument", /^steps: 6 steps exceed this server's limit of 5 per job$/],
    ["a step name", "SubmitJob", job(1, () => "n".repeat(64)), job(1, () => "n".repeat(65)), "invalid_argument", /^steps\[0\]\.name: "n+" must be 1-64 characters/],
    ["ListSteps page_size", "ListSteps", { pageSize: 500 }, { pageSize: 501 }, "invalid_argument", /^page_size: must be from 1 to 500, or 0 for the default of 50 \(got 501\)$/],
    ["ListSteps route", "ListSteps", { route: "r".repeat(200) }, { route: "r".repeat(201) }, "invalid_argument", /^route: is longer than 200 characters$/],
    ["ListJobs page_size", "ListJobs", { pageSize: 200 }, { pageSize: 201 }, "invalid_argument", /^page_size: must be from 1 to 200, or 0 for the default of 20 \(got 201\)$/],
  ];
  for (const [what, rpc, at, past, code, pattern] of limits) {
    it(`${what} (${rpc})`, async () => {
      await expectAnswer(rpc, at, "ok");
      await expectAnswer(rpc, past, code, pattern);
    });
  }

  it("a cancel reason (CancelStep, CancelJob)", async () => {
    for (const rpc of ["CancelStep", "CancelJob"] as const) {
      const submitted = await postJson(base, "stepq.v1.StepService/SubmitStep", echoStep());
      const step = submitted.body.step as { id: string; jobId: string };
      const target = rpc === "CancelStep" ? { stepId: step.id } : { jobId: step.jobId };
      await expectAnswer(rpc, { ...target, reason: "r".repeat(257) }, "invalid_argument", /^reason: is 257 characters; at most 256$/);
      await expectAnswer(rpc, { ...target, reason: "r".repeat(256) }, "ok");
    }
  });

  it("SubmitSteps requests", async () => {
    await expectAnswer("SubmitSteps", { requests: Array(1001).fill(echoStep()) }, "invalid_argument", /^requests: has 1001 steps; at most 1000 per call$/);
    await expectAnswer("SubmitSteps", { requests: Array(1000).fill(echoStep()) }, "ok");
  });

  it("the request size (--max-request-bytes), padded to the byte", async () => {
    const sized = (n: number) => {
      const json = JSON.stringify(echoStep());
      return json.slice(0, -1) + " ".repeat(n - json.length) + "}";
    };
    expect(Buffer.byteLength(sized(MAX_REQUEST_BYTES))).toBe(MAX_REQUEST_BYTES);
    await expectAnswer("SubmitStep", sized(MAX_REQUEST_BYTES), "ok");
    await expectAnswer(
      "SubmitStep",
      sized(MAX_REQUEST_BYTES + 1),
      "resource_exhausted",
      /^the request message is 1048577 bytes, over this server's limit of 1048576 bytes \(--max-request-bytes\); send a smaller request/,
    );
  });
});
