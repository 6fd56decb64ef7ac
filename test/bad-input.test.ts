import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import type { EventType } from "../gen/stepq/v1/events_pb.js";
import { expectJsonError, postJson } from "./helpers/json-rpc.js";
import { envelope, rawPost } from "./helpers/raw-rpc.js";
import { echo, useStack } from "./helpers/stack.js";

const stack = await useStack({ limits: { maxOperationBytes: 64 * 1024, maxStepsPerJob: 5 }, maxRequestBytes: 1024 * 1024 });
const S = "stepq.v1.StepService";
const J = "stepq.v1.JobService";
const base = stack.server.url;

const expectError = (path: string, body: unknown, code: string, ...patterns: RegExp[]) => expectJsonError(base, path, body, code, ...patterns);

const infer = (v: Record<string, unknown>) => ({ operation: { infer: { model: "tiny", prompt: "hi", ...v } } });

describe("ids", () => {
  it("an unknown but well-formed step id is NOT_FOUND", () =>
    expectError(`${S}/GetStep`, { stepId: "0000zzzzabcdabcd.0" }, "not_found", /step 0000zzzzabcdabcd\.0|job 0000zzzzabcdabcd not found/));
  it("a malformed step id is INVALID_ARGUMENT and shows the expected shape", () =>
    expectError(`${S}/GetStep`, { stepId: "nope" }, "invalid_argument", /^step_id: /, /"nope" is not a step id/, /0000a1b2c3d4e5f6\.0/));
  it("a missing step id is INVALID_ARGUMENT", () => expectError(`${S}/GetStep`, {}, "invalid_argument", /^step_id: is required/));
  it("a step index past the job's steps is NOT_FOUND and says how many steps there are", async () => {
    const step = await stack.client.submit(echo({ text: "x" }));
    await expectError(`${S}/GetStep`, { stepId: `${step.jobId}.3` }, "not_found", /has 1 step/);
  });
  it("a step id passed as a job id is INVALID_ARGUMENT with a hint", () =>
    expectError(`${J}/GetJob`, { jobId: "0000zzzzabcdabcd.0" }, "invalid_argument", /^job_id: /, /that is a step id/));
  it("an unknown job is NOT_FOUND", () => expectError(`${J}/GetJob`, { jobId: "0000zzzzabcdabcd" }, "not_found", /job 0000zzzzabcdabcd not found/));
  it("cancelling an unknown step is NOT_FOUND", () =>
    expectError(`${S}/CancelStep`, { stepId: "0000zzzzabcdabcd.0" }, "not_found", /not found/));
});

describe("a step that does not exist is named as a step, with what does exist", () => {
  const unknownJob = /^step 0000zzzzabcdabcd\.2 not found: its job 0000zzzzabcdabcd does not exist \(it never existed or its retention has passed\)$/;
  for (const rpc of ["GetStep", "CancelStep", "RetryStep", "PurgeStep"]) {
    it(`${rpc} of a step whose job does not exist says which step`, () => expectError(`${S}/${rpc}`, { stepId: "0000zzzzabcdabcd.2" }, "not_found", unknownJob));
    it(`${rpc} of a step index past the job's steps says how many steps it has`, async () => {
      const { job } = await stack.client.jobs.submitJob({
        steps: [
          { name: "a", operation: echo({ text: "x" }) },
          { name: "b", operation: echo({ text: "y" }) },
        ],
        priority: -1000,
      });
      const id = job!.id;
      await expectError(`${S}/${rpc}`, { stepId: `${id}.7` }, "not_found", new RegExp(`^step ${id}\\.7 not found: job ${id} has 2 steps \\(indexes 0 to 1\\)$`));
    });
  }
  it("a stream of a step index past the job's steps says how many steps it has", async () => {
    const step = await stack.client.submit(echo({ text: "x" }), { priority: -1000 });
    const reply = await rawPost(base, `${S}/StreamNarration`, "connect-stream", envelope(JSON.stringify({ stepId: `${step.jobId}.1` })), {
      "content-type": "application/connect+json",
    });
    expect(reply.code).toBe(Code.NotFound);
    expect(reply.message).toBe(`step ${step.jobId}.1 not found: job ${step.jobId} has 1 step (index 0)`);
  });
});

describe("operations", () => {
  it("a submit without an operation is INVALID_ARGUMENT", () =>
    expectError(`${S}/SubmitStep`, {}, "invalid_argument", /^operation: is required: set exactly one of infer, embed or echo/));
  it("an empty prompt is INVALID_ARGUMENT naming infer.prompt", () =>
    expectError(`${S}/SubmitStep`, infer({ prompt: "  " }), "invalid_argument", /^operation\.infer\.prompt: is empty/));
  it("a negative max_tokens is INVALID_ARGUMENT", () =>
    expectError(`${S}/SubmitStep`, infer({ maxTokens: -5 }), "invalid_argument", /^operation\.infer\.max_tokens: must not be negative \(got -5\)/));
  it("max_tokens over the server's limit is INVALID_ARGUMENT with the limit", () =>
    expectError(`${S}/SubmitStep`, infer({ maxTokens: 10_000_000 }), "invalid_argument", /limit of 32768/));
  it("a missing model is INVALID_ARGUMENT", () =>
    expectError(`${S}/SubmitStep`, infer({ model: "" }), "invalid_argument", /^operation\.infer\.model: is required/));
  it("a model name with spaces is INVALID_ARGUMENT", () =>
    expectError(`${S}/SubmitStep`, infer({ model: "my model" }), "invalid_argument", /not a valid model name/));
  it("a temperature out of range is INVALID_ARGUMENT", () =>
    expectError(`${S}/SubmitStep`, infer({ temperature: 3 }), "invalid_argument", /^operation\.infer\.temperature: must be between 0 and 2 \(got 3\)/));
  it("top_p of 0 is INVALID_ARGUMENT", () => expectError(`${S}/SubmitStep`, infer({ topP: 0 }), "invalid_argument", /top_p: must be in \(0, 1\]/));
  it("prompt and messages together are INVALID_ARGUMENT", () =>
    expectError(`${S}/SubmitStep`, infer({ messages: [{ role: "CHAT_ROLE_USER", content: "x" }] }), "invalid_argument", /either prompt or messages/));
  it("a chat message without a role is INVALID_ARGUMENT", () =>
    expectError(
      `${S}/SubmitStep`,
      infer({ prompt: "", messages: [{ content: "x" }] }),
      "invalid_argument",
      /^operation\.infer\.messages\[0\]\.role: must be CHAT_ROLE_SYSTEM, CHAT_ROLE_USER or CHAT_ROLE_ASSISTANT/,
    ));
  it("an empty stop string is INVALID_ARGUMENT", () =>
    expectError(`${S}/SubmitStep`, infer({ stop: ["\n", ""] }), "invalid_argument", /stop\[1\]: is empty/));
  it("an embed without inputs is INVALID_ARGUMENT", () =>
    expectError(`${S}/SubmitStep`, { operation: { embed: { model: "m" } } }, "invalid_argument", /embed\.inputs: is empty/));
  it("an echo with too many tokens is INVALID_ARGUMENT", () =>
    expectError(`${S}/SubmitStep`, { operation: { echo: { tokenCount: 2_000_000 } } }, "invalid_argument", /echo\.token_count: must be between 0 and 1000000/));
  it("an operation over the per-step size limit is RESOURCE_EXHAUSTED with the limit", () =>
    expectError(`${S}/SubmitStep`, infer({ prompt: "x".repeat(100_000) }), "resource_exhausted", /over this server's limit of 65536 bytes/));
  it("a request over the request size limit is RESOURCE_EXHAUSTED naming the limit and its flag", () =>
    expectError(
      `${S}/SubmitStep`,
      infer({ prompt: "x".repeat(2_000_000) }),
      "resource_exhausted",
      /^the request message is \d+ bytes, over this server's limit of 1048576 bytes \(--max-request-bytes\); send a smaller request/,
    ));
});

describe("enums and fields", () => {
  it("an unknown enum name is INVALID_ARGUMENT naming the field and listing the valid values", () =>
    expectError(
      `${S}/ListSteps`,
      { state: "STEP_STATE_BOGUS" },
      "invalid_argument",
      /^state: unknown value "STEP_STATE_BOGUS"; use one of STEP_STATE_WAITING, STEP_STATE_QUEUED, STEP_STATE_SCHEDULED, STEP_STATE_RUNNING/,
    ));
  it("an unknown enum number is INVALID_ARGUMENT listing the valid values", () =>
    expectError(`${S}/ListSteps`, { state: 42 }, "invalid_argument", /^state: unknown value 42; use one of STEP_STATE_WAITING/));
  it("an unknown job state filter is INVALID_ARGUMENT", () =>
    expectError(`${J}/ListJobs`, { state: 99 }, "invalid_argument", /^state: unknown value 99; use one of JOB_STATE_QUEUED/));
  it("an unknown failure policy is INVALID_ARGUMENT", () =>
    expectError(
      `${J}/SubmitJob`,
      { steps: [{ name: "a", operation: { echo: {} } }], failurePolicy: 7 },
      "invalid_argument",
      /^failure_policy: must be FAILURE_POLICY_FAIL_FAST or FAILURE_POLICY_CONTINUE \(got 7\)/,
    ));
  it("a misspelled field is INVALID_ARGUMENT naming it", () =>
    expectError(`${S}/SubmitStep`, { operation: { echo: {} }, priorty: 3 }, "invalid_argument", /priorty/));
  it("malformed JSON is INVALID_ARGUMENT", () => expectError(`${S}/SubmitStep`, "{not json", "invalid_argument"));
  it("a priority out of range is INVALID_ARGUMENT", () =>
    expectError(`${S}/SubmitStep`, { operation: { echo: {} }, priority: 5000 }, "invalid_argument", /^priority: must be an integer from -1000 to 1000/));
  it("an idempotency key with spaces is INVALID_ARGUMENT", () =>
    expectError(`${S}/SubmitStep`, { operation: { echo: {} }, idempotencyKey: "a b" }, "invalid_argument", /^idempotency_key: /));
  it("too many labels is INVALID_ARGUMENT", () =>
    expectError(
      `${S}/SubmitStep`,
      { operation: { echo: {} }, labels: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, "v"])) },
      "invalid_argument",
      /^labels: has 40 entries; at most 32/,
    ));
  it("retry.max_attempts over 100 is INVALID_ARGUMENT", () =>
    expectError(`${S}/SubmitStep`, { operation: { echo: {} }, retry: { maxAttempts: 500 } }, "invalid_argument", /^retry\.max_attempts: /));
  it("a page size over the maximum is INVALID_ARGUMENT", () =>
    expectError(`${S}/ListSteps`, { pageSize: 10_000 }, "invalid_argument", /^page_size: must be from 1 to 500/));
  it("a page token that was never issued is INVALID_ARGUMENT", () =>
    expectError(`${J}/ListJobs`, { pageToken: "garbage" }, "invalid_argument", /^page_token: is not a token returned by a previous ListJobs response/));
  it("a cancel reason over 256 characters is INVALID_ARGUMENT", async () => {
    const step = await stack.client.submit(echo({ text: "x" }), { priority: -1000 });
    await expectError(`${S}/CancelStep`, { stepId: step.id, reason: "r".repeat(300) }, "invalid_argument", /^reason: is 300 characters/);
  });
});

describe("batches", () => {
  it("an empty batch is INVALID_ARGUMENT", () => expectError(`${S}/SubmitSteps`, { requests: [] }, "invalid_argument", /^requests: is empty/));
  it("one bad request rejects the whole batch, naming its index", async () => {
    const before = await stack.client.steps.listSteps({});
    await expectError(
      `${S}/SubmitSteps`,
      { requests: [{ operation: { echo: {} } }, infer({ maxTokens: -1 })] },
      "invalid_argument",
      /^requests\[1\]\.operation\.infer\.max_tokens/,
    );
    const after = await stack.client.steps.listSteps({});
    expect(after.steps.length).toBe(before.steps.length);
  });
});

describe("streams", () => {
  async function streamError(fn: () => AsyncIterable<unknown>): Promise<ConnectError> {
    try {
      for await (const _ of fn()) {
        /* drain */
      }
    } catch (e) {
      return ConnectError.from(e);
    }
    throw new Error("stream did not fail");
  }

  it("a malformed cursor is INVALID_ARGUMENT", async () => {
    const step = await stack.client.submit(echo({ text: "x" }), { priority: -1000 });
    const err = await streamError(() => stack.client.steps.streamTokens({ stepId: step.id, afterCursor: "yesterday" }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.rawMessage).toMatch(/^after_cursor: "yesterday" is not a cursor/);
  });
  it("a WatchSteps cursor that is not an event cursor is INVALID_ARGUMENT", async () => {
    const err = await streamError(() => stack.client.steps.watchSteps({ afterCursor: "1700000000000-0.first" }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.rawMessage).toMatch(/^after_cursor: "1700000000000-0.first" is not a cursor; pass the cursor of a message you received/);
  });
  it("an events cursor is not a cursor of a job's log (INVALID_ARGUMENT)", async () => {
    const step = await stack.client.submit(echo({ text: "x" }), { priority: -1000 });
    const err = await streamError(() => stack.client.steps.streamTokens({ stepId: step.id, afterCursor: "1700000000000-0.3" }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.rawMessage).toMatch(/^after_cursor: "1700000000000-0.3" is not a cursor/);
  });
  it("streaming an unknown step is NOT_FOUND", async () => {
    const err = await streamError(() => stack.client.steps.streamNarration({ stepId: "0000zzzzabcdabcd.0" }));
    expect(err.code).toBe(Code.NotFound);
  });
  it("watching an unknown job is NOT_FOUND", async () => {
    const err = await streamError(() => stack.client.jobs.watchJob({ jobId: "0000zzzzabcdabcd" }));
    expect(err.code).toBe(Code.NotFound);
  });
  it("WatchSteps with an unknown event type is INVALID_ARGUMENT", async () => {
    const err = await streamError(() => stack.client.steps.watchSteps({ types: [77 as EventType] }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.rawMessage).toMatch(/^types\[0\]: unknown value 77/);
  });
});

describe("idempotency and state", () => {
  it("the same idempotency key and request returns the first step, marked deduplicated", async () => {
    const req = { operation: { echo: { text: "once" } }, idempotencyKey: "order-42", priority: -1000 };
    const first = await postJson(base, `${S}/SubmitStep`, req);
    const second = await postJson(base, `${S}/SubmitStep`, req);
    expect(first.status).toBe(200);
    expect((second.body.step as { id: string }).id).toBe((first.body.step as { id: string }).id);
    expect(second.body.deduplicated).toBe(true);
    expect(first.body.deduplicated).toBeUndefined();
  });
  it("the same idempotency key with a different request is ALREADY_EXISTS", async () => {
    await postJson(base, `${S}/SubmitStep`, { operation: { echo: { text: "a" } }, idempotencyKey: "order-43", priority: -1000 });
    await expectError(
      `${S}/SubmitStep`,
      { operation: { echo: { text: "b" } }, idempotencyKey: "order-43", priority: -1000 },
      "already_exists",
      /idempotency_key: already used with a different request/,
    );
  });
  it("cancelling a step that already succeeded is FAILED_PRECONDITION", async () => {
    const w = await stack.worker();
    const step = await stack.client.submit(echo({ text: "x" }), { priority: 1000 });
    await w.runOnce();
    await expectError(`${S}/CancelStep`, { stepId: step.id }, "failed_precondition", /already succeeded; only unfinished work can be cancelled/);
  });
});
