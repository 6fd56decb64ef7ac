import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, describe, expect, it } from "vitest";
import { createStepqClient } from "../clients/node/client.js";
import { StepState } from "../gen/stepq/v1/step_pb.js";
import { buildServer } from "../server/main.js";
import { useRedis } from "./helpers/redis.js";
import { echo, eventually, quiet } from "./helpers/stack.js";
import { createWorker } from "../worker/worker.js";
import { createEchoEngine } from "../worker/engines/echo.js";

// AOF with fsync always: every acknowledged write survives the SIGKILL.
const redis = await useRedis({ appendFsync: "always" });
const server = await buildServer({ redisUrl: redis.url, port: 0, logger: quiet, shutdownGraceMs: 200 });
const client = createStepqClient({ baseUrl: server.url });
const worker = createWorker({ redisUrl: redis.url, engines: [createEchoEngine()], logger: quiet, idleBlockMs: 500, leaseMs: 3000 });
await worker.start();
const running = worker.runForever();
afterAll(async () => {
  await worker.stop(100);
  await running;
  await server.close();
});

async function code(p: Promise<unknown>): Promise<[Code, string]> {
  try {
    await p;
  } catch (e) {
    const err = ConnectError.from(e);
    return [err.code, err.rawMessage];
  }
  return [Code.Unknown, "did not fail"];
}

describe("Redis outages", () => {
  it("calls answer UNAVAILABLE while Redis is down, and everything recovers when it returns", async () => {
    const before = await client.submit(echo({ text: "before" }));
    await client.wait(before.id);

    await redis.kill("SIGKILL");
    const [getCode, getMessage] = await code(client.get(before.id));
    expect(getCode).toBe(Code.Unavailable);
    expect(getMessage).toMatch(/Redis is unreachable.*retry shortly/);
    expect((await code(client.submit(echo({ text: "during" }))))[0]).toBe(Code.Unavailable);
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ status: "unavailable" });

    await redis.restart();
    await eventually(async () => (await fetch(`${server.url}/healthz`)).status, (s) => s === 200);
    const kept = await eventually(() => client.get(before.id).catch(() => undefined), (s) => s !== undefined);
    expect(kept?.state).toBe(StepState.SUCCEEDED);
    expect(kept?.result?.text).toBe("before");

    // The worker reconnected by itself and serves new work.
    const after = await client.submit(echo({ text: "after", tokenCount: 3 }));
    const tokens: string[] = [];
    for await (const e of client.follow(after.id)) if (e.type === "tokens") tokens.push(...e.tokens.map((t) => t.text));
    expect(tokens.join("")).toBe("after after after ");
  });
});
