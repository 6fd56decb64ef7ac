/**
 * Issue 17, item 2: the OpenAI-compatible endpoint, with the official
 * `openai` npm package as the client, against a real server and a worker
 * running the tiny llama model (infer and embed) and echo: chat and
 * completions, streaming and not; embeddings (the SDK's default base64 and
 * floats); the models live workers serve; an unknown model; bad requests in
 * OpenAI's error shape; each request an ordinary, labelled step; and a
 * client that disconnects mid-stream cancels its step.
 */
import OpenAI from "openai";
import { describe, expect, it } from "vitest";
import { StepState } from "../gen/stepq/v1/step_pb.js";
import { createApiKey } from "../queue/api-keys.js";
import { buildServer } from "../server/main.js";
import { createLlamaEngine } from "../worker/engines/llama.js";
import { TINY_MODEL_NAME } from "../worker/engines/tiny-model.js";
import { createEchoEngine } from "../worker/engines/echo.js";
import { connect } from "./helpers/redis.js";
import { eventually, quiet, useStack } from "./helpers/stack.js";
import { slowEngine } from "./helpers/slow-engine.js";
import { useTinyModel } from "./helpers/tiny-model.js";

const modelPath = await useTinyModel();
const stack = await useStack();
const llama = createLlamaEngine({ models: [{ name: TINY_MODEL_NAME, path: modelPath }], gpu: false, threads: 1 });
void (await stack.worker({ engines: [llama, slowEngine, createEchoEngine()], concurrency: 2 })).runForever();
const openai = new OpenAI({ baseURL: `${stack.server.url}/v1`, apiKey: "unused-on-loopback", maxRetries: 0 });

/** The stepq step behind a completion id (`chatcmpl-<step id>`). */
const stepOf = async (completionId: string) => (await stack.client.steps.getStep({ stepId: completionId.replace(/^[a-z]+-/, "") })).step!;

describe("chat completions", () => {
  it("answers a chat completion from the model, as an ordinary labelled step", async () => {
    const res = await openai.chat.completions.create({
      model: TINY_MODEL_NAME,
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Say hello" },
      ],
      max_tokens: 8,
      temperature: 0,
      seed: 1,
    });
    expect(res.object).toBe("chat.completion");
    expect(res.model).toBe(TINY_MODEL_NAME);
    expect(res.choices).toHaveLength(1);
    expect(res.choices[0]?.message.role).toBe("assistant");
    expect(res.choices[0]?.finish_reason).toBe("length");
    expect(res.usage?.completion_tokens).toBe(8);
    expect(res.usage?.total_tokens).toBe((res.usage?.prompt_tokens ?? 0) + 8);
    const step = await stepOf(res.id);
    expect(step.state).toBe(StepState.SUCCEEDED);
    expect(step.route).toBe(`infer:${TINY_MODEL_NAME}`);
    expect((await stack.client.jobs.getJob({ jobId: step.jobId })).job?.labels).toEqual({ api: "openai.chat.completions" });
    expect(step.result?.text).toBe(res.choices[0]?.message.content);
  });

  it("streams chunks with the same text as the finished step, then the usage, then [DONE]", async () => {
    const stream = await openai.chat.completions.create({
      model: TINY_MODEL_NAME,
      messages: [{ role: "user", content: "Count" }],
      max_tokens: 12,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    const finishes: (string | null)[] = [];
    let usage;
    let id = "";
    for await (const chunk of stream) {
      id = chunk.id;
      expect(chunk.object).toBe("chat.completion.chunk");
      for (const c of chunk.choices) {
        text += c.delta.content ?? "";
        finishes.push(c.finish_reason);
      }
      if (chunk.usage) usage = chunk.usage;
    }
    expect(finishes.filter((f) => f !== null)).toEqual(["length"]);
    expect(usage).toMatchObject({ completion_tokens: 12 });
    expect(text).toBe((await stepOf(id)).result?.text);
  });

  it("a client that disconnects mid-stream cancels its step", async () => {
    const stream = await openai.completions.create({ model: "slow", prompt: "Once", stream: true });
    let id = "";
    for await (const chunk of stream) {
      id = chunk.id;
      break; // leaves the loop: the SDK aborts the request
    }
    const step = await eventually(() => stepOf(id), (s) => s.state === StepState.CANCELLED || s.state === StepState.SUCCEEDED);
    expect(step.state).toBe(StepState.CANCELLED);
    expect(step.error?.message).toMatch(/client disconnected/);
  });
});

describe("completions, embeddings and models", () => {
  it("answers a completion, streaming and not", async () => {
    const res = await openai.completions.create({ model: TINY_MODEL_NAME, prompt: "Hi", max_tokens: 5, temperature: 0 });
    expect(res.object).toBe("text_completion");
    expect(res.choices[0]).toMatchObject({ index: 0, finish_reason: "length" });
    let streamed = "";
    for await (const chunk of await openai.completions.create({ model: TINY_MODEL_NAME, prompt: "Hi", max_tokens: 5, temperature: 0, stream: true })) {
      streamed += chunk.choices[0]?.text ?? "";
    }
    expect(streamed).toBe(res.choices[0]?.text); // temperature 0: the same text
  });

  it("embeds a string and a list, as base64 (the SDK's default) and as floats, with the same vectors", async () => {
    const one = await openai.embeddings.create({ model: TINY_MODEL_NAME, input: "hello" });
    expect(one.object).toBe("list");
    expect(one.data).toHaveLength(1);
    const vector = one.data[0]?.embedding as number[];
    expect(vector.length).toBe(64);
    const floats = await openai.embeddings.create({ model: TINY_MODEL_NAME, input: ["hello", "world"], encoding_format: "float" });
    expect(floats.data.map((d) => d.index)).toEqual([0, 1]);
    const first = floats.data[0]?.embedding as number[];
    vector.forEach((v, i) => expect(v).toBeCloseTo(first[i] as number, 5));
    const { response } = await openai.embeddings.create({ model: TINY_MODEL_NAME, input: "x" }).withResponse();
    const step = await stepOf(`x-${response.headers.get("x-stepq-step-id")}`);
    expect(step.state).toBe(StepState.SUCCEEDED);
    expect((await stack.client.jobs.getJob({ jobId: step.jobId })).job?.labels).toEqual({ api: "openai.embeddings" });
  });

  it("lists the models live workers serve", async () => {
    const ids: string[] = [];
    for await (const m of openai.models.list()) ids.push(m.id);
    expect(ids).toEqual(["slow", TINY_MODEL_NAME]);
    expect((await openai.models.retrieve(TINY_MODEL_NAME)).owned_by).toBe("stepq");
    await expect(openai.models.retrieve("gpt-9")).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });
});

describe("errors in OpenAI's shape", () => {
  it("an unknown model is 404 model_not_found", async () => {
    const err = await openai.chat.completions.create({ model: "gpt-9", messages: [{ role: "user", content: "x" }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect((err as InstanceType<typeof OpenAI.NotFoundError>).code).toBe("model_not_found");
    expect((err as Error).message).toMatch(/The model 'gpt-9' does not exist: no live worker serves it/);
  });

  it("a bad request is 400 invalid_request_error naming the param", async () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ model: TINY_MODEL_NAME, messages: [] }, "messages", /non-empty array/],
      [{ model: TINY_MODEL_NAME, messages: [{ role: "robot", content: "x" }] }, "messages[0].role", /system, developer, user or assistant/],
      [{ model: TINY_MODEL_NAME, messages: [{ role: "user", content: "x" }], temperature: 9 }, "temperature", /./],
      [{ model: TINY_MODEL_NAME, messages: [{ role: "user", content: "x" }], n: 2 }, "n", /only 1 choice/],
      [{ model: TINY_MODEL_NAME, messages: [{ role: "user", content: "x" }], tools: [{ type: "function", function: { name: "f" } }] }, "tools", /not supported/],
      [{ messages: [{ role: "user", content: "x" }] }, "model", /is required/],
    ];
    for (const [body, param, message] of cases) {
      const err = (await openai.chat.completions.create(body as never).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.BadRequestError>;
      expect(err, JSON.stringify(body)).toBeInstanceOf(OpenAI.BadRequestError);
      expect(err.param).toBe(param);
      expect(err.type).toBe("invalid_request_error");
      expect(err.message).toMatch(message);
    }
    const notJson = await fetch(`${stack.server.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: "{oops" });
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as { error: { message: string } }).error.message).toMatch(/^the body is not JSON/);
    const wrongMethod = await fetch(`${stack.server.url}/v1/chat/completions`);
    expect(wrongMethod.status).toBe(405);
    expect(((await wrongMethod.json()) as { error: { code: string } }).error.code).toBe("method_not_allowed");
  });

  it("a server that requires keys takes the SDK's apiKey, and refuses a wrong one with 401", async () => {
    const guarded = await buildServer({ redisUrl: stack.redis.url, port: 0, logger: quiet, auth: "required" });
    try {
      const redis = await connect(stack.redis.url);
      const secret = (await createApiKey(redis, guarded.queue.keys, { name: "sdk", tenant: "acme", roles: ["submit"] })).secret;
      redis.disconnect();
      const ok = new OpenAI({ baseURL: `${guarded.url}/v1`, apiKey: secret, maxRetries: 0 });
      const res = await ok.chat.completions.create({ model: TINY_MODEL_NAME, messages: [{ role: "user", content: "x" }], max_tokens: 2 });
      expect(res.choices[0]?.finish_reason).toBe("length");
      const wrong = new OpenAI({ baseURL: `${guarded.url}/v1`, apiKey: "sq_nope", maxRetries: 0 });
      await expect(wrong.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    } finally {
      await guarded.close();
    }
  });
});
