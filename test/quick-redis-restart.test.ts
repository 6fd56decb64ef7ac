/**
 * A Redis that is back within one reconnect attempt (~50 ms after a
 * SIGKILL, a supervisor restarting it at once). ioredis then drops a
 * command cut by the disconnect without ever settling it; on a blocking
 * connection (no command timeout) that once left a worker's BLPOP and the
 * stream hub's CLIENT ID pending forever: the worker stopped claiming and
 * the server's streams stopped, with Redis healthy again.
 */
import { describe, expect, it } from "vitest";
import { ConnectError } from "@connectrpc/connect";
import { createRedis, failOnClose, waitReady } from "../queue/connection.js";
import { connectionId, readLive } from "../queue/stream-reads.js";
import { createEchoEngine } from "../worker/engines/echo.js";
import { createWorker } from "../worker/worker.js";
import { connect, useRedis } from "./helpers/redis.js";
import { echo, quiet } from "./helpers/stack.js";
import { untilBlocked } from "./helpers/waits.js";
import { buildServer } from "../server/main.js";
import { createStepqClient } from "../clients/node/client.js";

const redis = await useRedis();
const admin = await connect(redis.url);

/** SIGKILLs Redis and starts it again at once; resolves when it answers. */
async function bounce(): Promise<void> {
  await redis.kill("SIGKILL");
  await redis.restart();
}

/** `p`, settled: handled from now on (it may fail while the test awaits something else). */
function track<T>(p: Promise<T>): Promise<{ error?: unknown }> {
  return p.then(() => ({}), (error: unknown) => ({ error }));
}

/** Whether `settled` settles within `ms`, and how. */
function within(settled: Promise<{ error?: unknown }>, ms: number): Promise<{ settled: boolean; error?: unknown }> {
  return Promise.race([
    settled.then((r) => ({ settled: true, ...r })),
    new Promise<{ settled: boolean }>((r) => setTimeout(() => r({ settled: false }), ms).unref()),
  ]);
}

describe("a blocking command cut by a Redis that is back at once", () => {
  it("fails UNAVAILABLE (BLPOP, XREAD, CLIENT ID) instead of staying pending forever", async () => {
    const blocking = createRedis(redis.url, "blocking", { name: "stepq-test-blocking" });
    await waitReady(blocking);
    try {
      const pop = track(failOnClose(blocking, () => blocking.blpop("nothing", 60)));
      await untilBlocked(admin, "blpop");
      await bounce();
      const r = await within(pop, 3000);
      expect(r.settled).toBe(true);
      expect(String(r.error)).toMatch(/connection to Redis closed/);

      await waitReady(blocking);
      const read = track(readLive(blocking, ["COUNT", 1, "BLOCK", 60_000, "STREAMS", "nothing", "$"]));
      await untilBlocked(admin, "xread");
      const id = track(connectionId(blocking)); // queued behind the read on the same connection
      await bounce();
      expect((await within(read, 3000)).settled).toBe(true);
      expect((await within(id, 3000)).settled).toBe(true);
    } finally {
      blocking.disconnect();
    }
  });
});

describe("after Redis is back at once", () => {
  it("a worker that was sleeping on its routes claims again", async () => {
    const server = await buildServer({ redisUrl: redis.url, port: 0, logger: quiet, shutdownGraceMs: 200 });
    const worker = createWorker({ redisUrl: redis.url, engines: [createEchoEngine()], logger: quiet, idleBlockMs: 60_000, leaseMs: 3000 });
    await worker.start();
    const running = worker.runForever();
    try {
      const client = createStepqClient({ baseUrl: server.url });
      await untilBlocked(admin, "blpop");
      await bounce();
      await waitReady(admin);
      const step = await client.submit(echo({ text: "after the restart" }));
      const done = await within(track(client.wait(step.id, { signal: AbortSignal.timeout(10_000) })), 10_000);
      expect(done.settled).toBe(true);
      expect(done.error === undefined ? undefined : ConnectError.from(done.error).code).toBe(undefined);
    } finally {
      await worker.stop(100);
      await running;
      await server.close();
    }
  });
});
