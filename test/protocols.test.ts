import { describe, expect, it } from "vitest";
import { createStepqClient } from "../clients/node/client.js";
import { StepState } from "../gen/stepq/v1/step_pb.js";
import { useFlakyProxy } from "./helpers/flaky-proxy.js";
import { echo, useStack } from "./helpers/stack.js";

const stack = await useStack();
const worker = await stack.worker({ concurrency: 4 });
void worker.runForever();

const variants = [
  { protocol: "connect", httpVersion: "1.1" },
  { protocol: "connect", httpVersion: "2" },
  { protocol: "grpc", httpVersion: "2" },
  { protocol: "grpc-web", httpVersion: "1.1" },
  { protocol: "grpc-web", httpVersion: "2" },
] as const;

describe("one port speaks every protocol", () => {
  for (const v of variants) {
    it(`${v.protocol} over HTTP/${v.httpVersion}: unary calls, a server stream and an error code`, async () => {
      const client = createStepqClient({ baseUrl: stack.server.url, ...v });
      const step = await client.submit(echo({ text: `via ${v.protocol}`, tokenCount: 3 }));
      const tokens: string[] = [];
      for await (const e of client.follow(step.id)) if (e.type === "tokens") tokens.push(...e.tokens.map((t) => t.text));
      expect(tokens.join("")).toBe(`via ${v.protocol} via `);
      expect((await client.get(step.id)).state).toBe(StepState.SUCCEEDED);
      await expect(client.get("0000zzzzabcdabcd.0")).rejects.toMatchObject({ code: 5 });
    });
  }
});

describe("submitting over a connection that drops", () => {
  it.each(["1.1", "2"] as const)("client.submit over HTTP/%s with an idempotency key retries a lost reply and gets the first step back, creating one job", async (httpVersion) => {
    const proxy = await useFlakyProxy({ host: "127.0.0.1", port: stack.server.port }, httpVersion === "2" ? 100 : 20, 1);
    const client = createStepqClient({ baseUrl: proxy.url, httpVersion });
    const before = await stack.server.queue.redis.xlen(stack.server.queue.keys.jobIndex);
    const step = await client.submit(echo({ text: "exactly once" }), { idempotencyKey: `lost-reply-${httpVersion}` });
    expect(proxy.cuts).toBe(1);
    expect(await stack.server.queue.redis.xlen(stack.server.queue.keys.jobIndex)).toBe(before + 1);
    expect((await stack.client.wait(step.id)).result?.text).toBe("exactly once");
  });
});

