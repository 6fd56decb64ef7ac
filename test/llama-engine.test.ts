/**
 * The llama engine on real llama.cpp (node-llama-cpp, CPU backend) with the
 * tiny random-weight model written for this file. One engine, hence one
 * llama.cpp backend, serves every test; most call `engine.run` directly with
 * a claimed step and a context implemented here, one goes through the queue.
 */
import { writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { afterAll, describe, expect, it } from "vitest";
import { ChatRole, type EmbedOperationSchema, type Operation, OperationSchema } from "../gen/stepq/v1/operation_pb.js";
import { NarrationLevel } from "../gen/stepq/v1/output_pb.js";
import { StepState, StopReason } from "../gen/stepq/v1/step_pb.js";
import { type ClaimedStep, leaseOf } from "../queue/leases.js";
import type { EngineContext, StopSignal } from "../worker/engines/engine.js";
import { createLlamaEngine } from "../worker/engines/llama.js";
import { createTokenText } from "../worker/engines/llama-text.js";
import { TINY_MODEL_NAME, writeTinyModel } from "../worker/engines/tiny-model.js";
import { InvalidOperationError } from "../worker/step-failure.js";
import { quiet, useStack } from "./helpers/stack.js";
import { useTinyModel } from "./helpers/tiny-model.js";

const modelPath = await useTinyModel();
const garbagePath = join(dirname(modelPath), "garbage.gguf");
await writeFile(garbagePath, "this is not a GGUF file, just text that happens to end in .gguf\n");
const missingPath = join(dirname(modelPath), "missing.gguf");
const endsEarlyPath = join(dirname(modelPath), "ends-early.gguf");
await writeTinyModel(endsEarlyPath, { endsEarly: true });

const engine = createLlamaEngine({
  models: [
    { name: TINY_MODEL_NAME, path: modelPath },
    { name: "missing", path: missingPath },
    { name: "garbage", path: garbagePath },
    { name: "ends-early", path: endsEarlyPath },
  ],
  gpu: false,
  threads: 1,
});
await engine.start();
afterAll(() => engine.close());
const stack = await useStack();

let nextJob = 0;
function claimed(operation: Operation): ClaimedStep {
  const lease = leaseOf(`llamatest${String(nextJob++).padStart(7, "0")}`, 0, 1);
  // The engine dispatches on the operation; the route only matters to the queue.
  return { ...lease, name: "main", route: "llama-test", operation, leaseDeadline: Date.now() + 60_000, submittedAt: Date.now(), readyAt: Date.now(), timeoutMs: 0, dependencies: [] };
}
interface InferInit {
  model?: string;
  prompt?: string;
  messages?: { role: ChatRole; content: string }[];
  maxTokens?: number;
  temperature?: number;
  seed?: number;
  stop?: string[];
}
const infer = (value: InferInit) => create(OperationSchema, { kind: { case: "infer", value: { model: TINY_MODEL_NAME, ...value } } });
const embed = (value: MessageInitShape<typeof EmbedOperationSchema>) => create(OperationSchema, { kind: { case: "embed", value } });

/** An EngineContext that records what the engine streams; `onToken` sees each token as it comes. */
function recorder(onToken?: (count: number, abort: AbortController) => void) {
  const abort = new AbortController();
  const tokens: string[] = [];
  const narration: { level: NarrationLevel; text: string }[] = [];
  const progress: number[] = [];
  const ctx: EngineContext = {
    signal: abort.signal,
    log: quiet,
    token(text) {
      tokens.push(text);
      onToken?.(tokens.length, abort);
    },
    narrate: (text, level = NarrationLevel.INFO) => narration.push({ level, text }),
    progress: (fraction) => progress.push(fraction),
  };
  return { ctx, abort, tokens, narration, progress };
}

async function run(operation: Operation, rec = recorder()) {
  const result = await engine.run(claimed(operation), rec.ctx);
  return { result, ...rec };
}

describe("llama engine", () => {
  it("steps running at once share one model load, narrated by the step that triggered it", async () => {
    const [a, b] = await Promise.all([run(infer({ prompt: "Hi", maxTokens: 4, seed: 1 })), run(infer({ prompt: "Yo", maxTokens: 4, seed: 2 }))]);
    const loads = [...a.narration, ...b.narration].map((n) => n.text).filter((t) => t.startsWith("loading model"));
    expect(loads).toEqual([`loading model ${TINY_MODEL_NAME}`]);
    expect([...a.narration, ...b.narration].some((n) => new RegExp(`^model ${TINY_MODEL_NAME} loaded in \\d+ ms$`).test(n.text))).toBe(true);
    expect(a.result.completionTokens).toBe(4);
    expect(b.result.completionTokens).toBe(4);
  });

  it("streams one token per generated token, and the tokens concatenate to the result text", async () => {
    const { result, tokens, narration } = await run(infer({ prompt: "Hello", maxTokens: 40, seed: 1 }));
    expect(tokens).toHaveLength(40);
    expect(result.completionTokens).toBe(40);
    expect(tokens.join("")).toBe(result.text);
    expect(result.text).toMatch(/^[\x20-\x7e]{40}$/); // the tiny model writes printable ASCII, one character a token
    expect(result.timeToFirstTokenMs).toBeGreaterThanOrEqual(0);
    expect(narration.at(-1)?.text).toMatch(/^generated 40 tokens in \d+ ms \(\d+ tok\/s\)$/);
  });

  it("stops at exactly max_tokens with stop reason MAX_TOKENS and counts the prompt's tokens", async () => {
    const { result, tokens, progress } = await run(infer({ prompt: "Hello", maxTokens: 33, seed: 3 }));
    expect(tokens).toHaveLength(33);
    expect(result.completionTokens).toBe(33);
    expect(result.stopReason).toBe(StopReason.MAX_TOKENS);
    expect(result.promptTokens).toBe(6); // <s> and one byte token per character
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.every((f) => f > 0 && f <= 1)).toBe(true);
  });

  it("a model that ends its text stops with END_OF_TEXT, its end token counted and streamed as empty text", async () => {
    const { result, tokens } = await run(infer({ model: "ends-early", prompt: "Hello", maxTokens: 200, seed: 10 }));
    expect(result.stopReason).toBe(StopReason.END_OF_TEXT);
    expect(result.completionTokens).toBeLessThan(200);
    expect(tokens).toHaveLength(result.completionTokens ?? -1);
    expect(tokens.at(-1)).toBe("");
    expect(tokens.join("")).toBe(result.text);
  });

  it("caps max_tokens to the room the prompt leaves in the context, with a warning", async () => {
    const { result, narration } = await run(infer({ prompt: "Hello", maxTokens: 1000, seed: 4, temperature: 0 }));
    expect(result.completionTokens).toBe(256 - 6);
    expect(result.stopReason).toBe(StopReason.MAX_TOKENS);
    expect(narration.some((n) => n.level === NarrationLevel.WARN && n.text.includes("capped to 250"))).toBe(true);
  });

  it("a stop sequence ends generation and is left out of both the text and the stream", async () => {
    const free = await run(infer({ prompt: "Once upon a time", maxTokens: 80, seed: 7, temperature: 0.8 }));
    const text = free.result.text ?? "";
    const stop = text.slice(30, 33);
    const at = text.indexOf(stop);
    const stopped = await run(infer({ prompt: "Once upon a time", maxTokens: 80, seed: 7, temperature: 0.8, stop: ["never appears \u0000", stop] }));
    expect(stopped.result.stopReason).toBe(StopReason.STOP_SEQUENCE);
    expect(stopped.result.text).toBe(text.slice(0, at));
    expect(stopped.tokens.join("")).toBe(stopped.result.text);
    // Tokens were streamed up to and including the one that completed the stop.
    expect(stopped.tokens).toHaveLength(at + stop.length);
    expect(stopped.result.completionTokens).toBe(at + stop.length);
  });

  it("a fixed seed repeats the same text at temperature 0.8, and temperature 0 ignores the seed", async () => {
    const op = (seed: number, temperature: number) => infer({ prompt: "The", maxTokens: 48, seed, temperature });
    const [a, b, c] = [await run(op(42, 0.8)), await run(op(42, 0.8)), await run(op(43, 0.8))];
    expect(b.result.text).toBe(a.result.text);
    expect(c.result.text).not.toBe(a.result.text);
    const [g1, g2] = [await run(op(1, 0)), await run(op(2, 0))];
    expect(g2.result.text).toBe(g1.result.text);
  });

  it("an aborted signal stops generation within a few tokens and the run rejects", async () => {
    const rec = recorder((count, abort) => {
      if (count === 5) setImmediate(() => abort.abort({ kind: "cancelled" } satisfies StopSignal));
    });
    await expect(run(infer({ prompt: "Hello", maxTokens: 240, seed: 5 }), rec)).rejects.toThrow(/stopped after \d+ tokens \(cancelled\)/);
    expect(rec.tokens.length).toBeGreaterThanOrEqual(5);
    expect(rec.tokens.length).toBeLessThan(20);

    const early = recorder();
    early.abort.abort({ kind: "shutdown" } satisfies StopSignal);
    await expect(run(infer({ prompt: "Hello", maxTokens: 240 }), early)).rejects.toThrow(/stopped after 0 tokens \(shutdown\)/);
    expect(early.tokens).toHaveLength(0);
  });

  it("chat messages are rendered with the model's chat template and answered", async () => {
    const messages = [
      { role: ChatRole.SYSTEM, content: "Be brief." },
      { role: ChatRole.USER, content: "Hi there" },
    ];
    const { result, tokens } = await run(infer({ messages, maxTokens: 12, seed: 9 }));
    expect(tokens).toHaveLength(12);
    expect(tokens.join("")).toBe(result.text);
    // The template (Llama 2 style for a GGUF without one) adds tokens around the messages.
    expect(result.promptTokens).toBeGreaterThan(1 + "Be brief.".length + "Hi there".length);
    await expect(run(infer({ messages: [{ role: ChatRole.UNSPECIFIED, content: "?" }] }))).rejects.toBeInstanceOf(InvalidOperationError);
  });

  it("embed returns one vector per input, equal inputs giving equal vectors", async () => {
    const { result } = await run(embed({ model: TINY_MODEL_NAME, inputs: ["Hello world", "Something else", "Hello world"] }));
    const vectors = result.embeddings ?? [];
    expect(vectors).toHaveLength(3);
    for (const v of vectors) {
      expect(v).toHaveLength(64); // the model's embedding_length
      expect(v.every(Number.isFinite)).toBe(true);
    }
    expect(vectors[2]).toEqual(vectors[0]);
    expect(vectors[1]).not.toEqual(vectors[0]);
    expect(result.stopReason).toBe(StopReason.UNSPECIFIED);
  });

  it("a missing or unreadable model file fails with a non-retryable InvalidOperationError naming the path", async () => {
    for (const [name, path] of [
      ["missing", missingPath],
      ["garbage", garbagePath],
    ] as const) {
      const err = await run(infer({ model: name, prompt: "Hello" })).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidOperationError);
      expect((err as InvalidOperationError).retryable).toBe(false);
      expect((err as Error).message).toContain(path);
    }
  });

  it("an unknown model, a non-llama operation or a prompt too long for the context is an InvalidOperationError", async () => {
    await expect(run(infer({ model: "nope", prompt: "Hello" }))).rejects.toThrow(InvalidOperationError);
    await expect(run(create(OperationSchema, { kind: { case: "echo", value: { text: "x" } } }))).rejects.toThrow(InvalidOperationError);
    await expect(run(infer({ prompt: "" }))).rejects.toThrow(/exactly one of prompt and messages/);
    await expect(run(infer({ prompt: "x".repeat(300) }))).rejects.toThrow(/prompt is 301 tokens/);
  });
});

describe("token text splitting", () => {
  // The tiny model's vocabulary: byte b is token b + 3. Buffer decoding
  // replaces incomplete UTF-8 with U+FFFD, as llama.cpp's detokenizer does.
  const bytes = (s: string) => [...Buffer.from(s, "utf8")].map((b) => b + 3);
  const detokenize = (tokens: readonly number[]) => Buffer.from(tokens.map((t) => t - 3)).toString("utf8");

  it("holds back the bytes of a multi-byte character until it decodes", () => {
    const split = createTokenText(detokenize, []);
    const pieces = bytes("aé€😀b").map((t) => split.push(t as never).text);
    expect(pieces).toEqual(["a", "", "é", "", "", "€", "", "", "", "😀", "b"]);
  });

  it("holds back a possible stop-string prefix and lets it go when the stop does not follow", () => {
    const split = createTokenText(detokenize, ["END"]);
    const pieces = bytes("xENxEND").map((t) => split.push(t as never));
    expect(pieces.map((p) => p.text)).toEqual(["x", "", "", "ENx", "", "", ""]);
    expect(pieces.at(-1)?.stop).toBe("END");
    expect(split.flush()).toBe("");
  });

  it("drops the stop string and whatever follows it in the same token", () => {
    const multi = 1000; // one token that decodes to "NDzz"
    const split = createTokenText((tokens) => tokens.map((t) => (t === multi ? "NDzz" : detokenize([t]))).join(""), ["END"]);
    expect(split.push(bytes("x")[0] as never)).toEqual({ text: "x" });
    expect(split.push(bytes("E")[0] as never)).toEqual({ text: "" });
    expect(split.push(multi as never)).toEqual({ text: "", stop: "END" });
  });

  it("flushes held-back text when generation ends another way", () => {
    const split = createTokenText(detokenize, ["END"]);
    expect(split.push(bytes("E")[0] as never).text).toBe("");
    expect(split.flush()).toBe("E");
  });
});

describe("llama engine through the queue", () => {
  it("an infer step streams 16 tokens to a follower and succeeds with usage.completionTokens 16", async () => {
    const worker = await stack.worker({ engines: [engine] });
    void worker.runForever();
    const step = await stack.client.submit({ kind: { case: "infer", value: { model: TINY_MODEL_NAME, prompt: "Hello", maxTokens: 16, seed: 1 } } });
    const streamed: string[] = [];
    const narration: string[] = [];
    let end;
    for await (const e of stack.client.follow(step.id)) {
      if (e.type === "tokens") streamed.push(...e.tokens.map((t) => t.text));
      if (e.type === "narration") narration.push(e.text);
      if (e.type === "end") end = e;
    }
    expect(streamed).toHaveLength(16);
    expect(end?.state).toBe(StepState.SUCCEEDED);
    expect(end?.usage?.completionTokens).toBe(16);
    expect(end?.stopReason).toBe(StopReason.MAX_TOKENS);
    expect(narration.some((t) => t.startsWith("generated 16 tokens"))).toBe(true);
    const done = await stack.client.get(step.id);
    expect(done.result?.text).toBe(streamed.join(""));
    expect(done.result?.usage?.promptTokens).toBe(6);
  });
});
