/**
 * A full Redis (used memory over maxmemory, noeviction: what production
 * runs) refuses every write. Clients must hear RESOURCE_EXHAUSTED saying so,
 * not `internal`; readiness must fail; and work in flight must finish once
 * memory is freed, without losing an attempt.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { StepState } from "../gen/stepq/v1/step_pb.js";
import { connect } from "./helpers/redis.js";
import { echo, eventually, useStack } from "./helpers/stack.js";

const stack = await useStack();
const redis = await connect(stack.redis.url);
void (await stack.worker()).runForever();

/** How many commands Redis refused for memory so far. */
async function oomRefusals(): Promise<number> {
  const info = await redis.info("errorstats");
  return Number(/^errorstat_OOM:count=(\d+)/m.exec(info)?.[1] ?? 0);
}

describe("a full Redis", () => {
  it("submits answer RESOURCE_EXHAUSTED, /healthz fails, and a running step completes once memory is freed", async () => {
    const running = await stack.client.submit(echo({ text: "in flight", delayMs: 400 }));
    await eventually(() => stack.client.get(running.id), (s) => s.state === StepState.RUNNING);

    await redis.config("SET", "maxmemory", "1");
    try {
      const err = await stack.client.submit(echo({ text: "refused" })).then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
      expect(err?.code).toBe(Code.ResourceExhausted);
      expect(err?.rawMessage).toMatch(/^Redis is out of memory .* nothing can be written; retry later/);

      const health = await fetch(`${stack.server.url}/healthz`);
      expect(health.status).toBe(503);
      expect(await health.json()).toMatchObject({ status: "unavailable", redis: expect.stringMatching(/^out of memory: \d+ bytes used of maxmemory 1 \(noeviction\)/) });

      // Reads still work.
      expect((await stack.client.get(running.id)).state).toBe(StepState.RUNNING);
      // The worker's completion is refused too, and retried.
      const before = await oomRefusals();
      await eventually(oomRefusals, (n) => n > before + 1);
    } finally {
      await redis.config("SET", "maxmemory", "0");
    }

    const done = await stack.client.wait(running.id);
    expect(done.state).toBe(StepState.SUCCEEDED);
    expect(done.attempt).toBe(1);
    expect(done.result?.text).toBe("in flight");
    expect((await fetch(`${stack.server.url}/healthz`)).status).toBe(200);
  });
});
