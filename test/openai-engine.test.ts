/**
 * Issue 19, item 1: the openai engine, against a real OpenAI-compatible
 * server: another stepq fleet's /v1 endpoint, its worker running the tiny
 * llama model (and a slow model). Streaming with narration and usage,
 * embeddings, model name mapping, cancel reaching the upstream, 429 with
 * Retry-After tried again, 4xx failing for good with the upstream's message,
 * an unreachable upstream failing retryably, and the concurrency limit.
 */
import { describe, expect, it } from "vitest";
import { StepState, StopReason } from "../gen/stepq/v1/step_pb.js";
import { createLlamaEngine } from "../worker/engines/llama.js";
import { createOpenAiEngine, modelMap } from "../worker/engines/openai.js";
import { TINY_MODEL_NAME } from "../worker/engines/tiny-model.js";
import { eventually, useStack } from "./helpers/stack.js";
import { slowEngine } from "./helpers/slow-engine.js";
import { useTinyModel } from "./helpers/tiny-model.js";

// The upstream: a stepq server whose worker runs the tiny model and a slow one; at most 2 submits a second.
const upstream = await useStack({ limits: { maxSubmitsPerSecond: 2 } });
const llama = createLlamaEngine({ models: [{ name: TINY_MODEL_NAME, path: await useTinyModel() }], gpu: false, threads: 1 });
void (await upstream.worker({ engines: [llama, slowEngine], concurrency: 4 })).runForever();

// This fleet: a worker whose openai engine forwards to the upstream.
const fleet = await useStack();
const forwarding = createOpenAiEngine({
  baseUrl: `${upstream.server.url}/v1`,
  models: modelMap([`remote=${TINY_MODEL_NAME}`, "slow-remote=slow", "missing=no-such-model"]),
  embedModels: modelMap([`remote=${TINY_MODEL_NAME}`]),
  concurrency: 1,
});
void (await fleet.worker({ engines: [forwarding], concurrency: 3 })).runForever();

const infer = (model: string, prompt: string, maxTokens = 8, more = {}) => ({ kind: { case: "infer" as const, value: { model, prompt, maxTokens, temperature: 0, ...more } } });

describe("the openai engine", () => {
  it("streams the upstream's tokens with narration and its usage, under the mapped model name", async () => {
    const step = await fleet.client.submit(infer("remote", "Hello", 10));
    let text = "";
    const narration: string[] = [];
    for await (const e of fleet.client.follow(step.id)) {
      if (e.type === "tokens") text += e.tokens.map((t) => t.text).join("");
      if (e.type === "narration") narration.push(e.text);
    }
    const done = await fleet.client.get(step.id);
    expect(done.state).toBe(StepState.SUCCEEDED);
    expect(done.result?.text).toBe(text);
    expect(done.result?.usage?.completionTokens).toBe(10);
    expect(done.result?.stopReason).toBe(StopReason.MAX_TOKENS);
    expect(narration[0]).toMatch(/^openai: asking stepq-tiny at 127\.0\.0\.1:\d+$/);
    expect(narration).toContainEqual(expect.stringMatching(/^openai: first token after \d+ ms$/));
    expect(narration.at(-1)).toMatch(/^openai: finished \(length\) after \d+ ms$/);
    // The same text as asking the upstream directly (temperature 0).
    const direct = await upstream.client.wait((await upstream.client.submit(infer(TINY_MODEL_NAME, "Hello", 10))).id);
    expect(text).toBe(direct.result?.text);
  });

  it("forwards chat messages and embeddings", async () => {
    const chat = await fleet.client.wait(
      (await fleet.client.submit({ kind: { case: "infer", value: { model: "remote", messages: [{ role: 2, content: "Hi" }], maxTokens: 4 } } })).id,
    );
    expect(chat.state).toBe(StepState.SUCCEEDED);
    expect(chat.result?.usage?.completionTokens).toBe(4);
    const embedded = await fleet.client.wait((await fleet.client.submit({ kind: { case: "embed", value: { model: "remote", inputs: ["a", "b"] } } })).id);
    expect(embedded.result?.embeddings.map((e) => e.values.length)).toEqual([64, 64]);
  });

  it("a cancelled step aborts its upstream request (the upstream's step is cancelled too)", async () => {
    const step = await fleet.client.submit(infer("slow-remote", "x", 0));
    for await (const e of fleet.client.follow(step.id)) if (e.type === "tokens") break;
    await fleet.client.cancel(step.id);
    const theirs = await eventually(
      () => upstream.client.steps.listSteps({ route: "infer:slow", pageSize: 5 }),
      (r) => r.steps.some((s) => s.state === StepState.CANCELLED),
    );
    expect(theirs.steps.find((s) => s.state === StepState.CANCELLED)?.error?.message).toMatch(/client disconnected/);
  });

  it("a 4xx fails the step for good with the upstream's message; 429 is tried again after Retry-After", async () => {
    const missing = await fleet.client.wait((await fleet.client.submit(infer("missing", "x"))).id);
    expect(missing.state).toBe(StepState.FAILED);
    expect(missing.attempt).toBe(1); // not retried
    expect(missing.error?.message).toMatch(/^upstream 127\.0\.0\.1:\d+ answered 404: The model 'no-such-model' does not exist/);

    // Three at once against an upstream taking 2 submits a second: one is told 429, waits, and succeeds.
    const steps = await Promise.all([1, 2, 3].map((i) => fleet.client.submit(infer("remote", `n${i}`, 2))));
    const narration: string[] = [];
    for (const s of steps) for await (const e of fleet.client.follow(s.id)) if (e.type === "narration") narration.push(e.text);
    expect((await Promise.all(steps.map((s) => fleet.client.get(s.id)))).map((s) => s.state)).toEqual([StepState.SUCCEEDED, StepState.SUCCEEDED, StepState.SUCCEEDED]);
    expect(narration).toContainEqual(expect.stringMatching(/answered 429: .*; trying again in 1000 ms$/));
  }, 30_000);

  it("an upstream that cannot be reached fails the attempt as retryable, after trying within it", async () => {
    const away = await useStack();
    const engine = createOpenAiEngine({ baseUrl: "http://127.0.0.1:1/v1", models: modelMap(["gone"]), embedModels: new Map() });
    void (await away.worker({ engines: [engine] })).runForever();
    const step = await away.client.submit(infer("gone", "x"), { retry: { maxAttempts: 1 } });
    const done = await away.client.wait(step.id);
    expect(done.state).toBe(StepState.FAILED);
    expect(done.error?.retryable).toBe(true);
    expect(done.error?.message).toMatch(/^upstream 127\.0\.0\.1:1 could not be reached/);
  }, 20_000);

  it("keeps to its concurrency limit, saying so while a step waits", async () => {
    // concurrency 1: of two slow steps, whichever comes second waits for the first's connection.
    const steps = await Promise.all([fleet.client.submit(infer("slow-remote", "a", 0)), fleet.client.submit(infer("slow-remote", "b", 0))]);
    const stop = new AbortController();
    const waited = await Promise.race(
      steps.map(async (s) => {
        for await (const e of fleet.client.follow(s.id, { signal: stop.signal })) {
          if (e.type === "narration" && e.text.startsWith("openai: waiting for one of 1 connections")) return e.text;
        }
        return new Promise<string>(() => undefined); // ended without waiting: the other one waited
      }),
    );
    stop.abort();
    expect(waited).toBe("openai: waiting for one of 1 connections to " + new URL(upstream.server.url).host);
    await Promise.all(steps.map((s) => fleet.client.cancel(s.id)));
  });
});
