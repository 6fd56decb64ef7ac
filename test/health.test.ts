/**
 * Issue 20, item 4: health. gRPC's standard health service answers probes
 * without a key: SERVING for the server and every stepq.v1 service while it
 * is ready, NOT_FOUND for another name, and Watch reports a change (Redis
 * gone). Over HTTP, /readyz (and /healthz) is readiness: Redis reachable and
 * holding this version's Functions library; /livez is liveness, which a
 * Redis outage does not fail.
 */
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../gen/grpc/health/v1/health_pb.js";
import { buildServer } from "../server/main.js";
import { connect, useRedis } from "./helpers/redis.js";
import { echo, quiet, useStack } from "./helpers/stack.js";

describe("grpc.health.v1.Health", () => {
  it("answers probes without a key, for the server and each stepq service, and NOT_FOUND for others", async () => {
    const stack = await useStack({ auth: "required" });
    const health = createClient(Health, createGrpcTransport({ baseUrl: stack.server.url }));
    expect((await health.check({})).status).toBe(Status.SERVING);
    expect((await health.check({ service: "stepq.v1.StepService" })).status).toBe(Status.SERVING);
    const err = await health.check({ service: "nope.Service" }).catch((e: unknown) => ConnectError.from(e));
    expect((err as ConnectError).code).toBe(Code.NotFound);
    // The rest of the server still needs a key.
    const refused = await stack.client.submit(echo()).catch((e: unknown) => ConnectError.from(e));
    expect((refused as ConnectError).code).toBe(Code.Unauthenticated);
  });

  it("Watch reports NOT_SERVING when Redis goes; /readyz turns 503 and /livez stays 200", async () => {
    const redis = await useRedis();
    const server = await buildServer({ redisUrl: redis.url, port: 0, logger: quiet, queue: "health" });
    try {
      const seen: Status[] = [];
      const stop = new AbortController();
      const watching = (async () => {
        for await (const r of createClient(Health, createGrpcTransport({ baseUrl: server.url })).watch({}, { signal: stop.signal })) {
          seen.push(r.status);
          if (r.status === Status.NOT_SERVING) return;
        }
      })();
      await expect.poll(() => seen[0]).toBe(Status.SERVING);
      expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
      await redis.stop();
      await watching;
      stop.abort();
      expect(seen).toEqual([Status.SERVING, Status.NOT_SERVING]);
      const ready = await fetch(`${server.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { status: string }).status).toBe("unavailable");
      expect((await fetch(`${server.url}/livez`)).status).toBe(200);
    } finally {
      await server.close();
    }
  }, 20_000);

  it("/readyz is 503 while Redis lacks the Functions library, and 200 once it is loaded again", async () => {
    const stack = await useStack();
    const direct = await connect(stack.redis.url);
    await direct.call("FUNCTION", "FLUSH");
    const ready = await fetch(`${stack.server.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { redis: string }).redis).toMatch(/Functions library is not loaded/);
    await stack.client.submit(echo()); // a call finds the library gone and loads it
    expect((await fetch(`${stack.server.url}/readyz`)).status).toBe(200);
    direct.disconnect();
  });
});
