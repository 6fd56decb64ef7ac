/**
 * A server stream whose deadline passes while it waits on Redis (held back
 * here with CLIENT PAUSE) ends DEADLINE_EXCEEDED, not OK when the read
 * returns: over Connect, gRPC and gRPC-Web. (Written to check a fuzz
 * finding, streams that ended OK 400 ms after a 50 ms deadline under load:
 * the server's own deadline holds; the lateness there came before the
 * server saw the request. See docs/fuzz.md.)
 */
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { createStepqClient } from "../clients/node/client.js";
import { connect } from "./helpers/redis.js";
import { echo, useStack } from "./helpers/stack.js";

const PAUSE_HEADER = "x-test-pause-redis-ms";
let pauser: Awaited<ReturnType<typeof connect>> | undefined;

/** Pauses every Redis client for the ms the request's test header asks, just before the handler runs. */
const pauseRedis: Interceptor = (next) => async (req) => {
  const ms = req.header.get(PAUSE_HEADER);
  if (ms && pauser) await pauser.call("client", "pause", ms, "ALL");
  return next(req);
};

const stack = await useStack({ interceptors: [pauseRedis] });
pauser = await connect(stack.redis.url);
void (await stack.worker()).runForever();

describe("stream deadlines", () => {
  it("a stream whose Redis read returns after its 50 ms deadline ends DEADLINE_EXCEEDED, not OK", async () => {
    const step = await stack.client.submit(echo({ text: "done" }));
    await stack.client.wait(step.id);
    for (const protocol of ["connect", "grpc", "grpc-web"] as const) {
      const client = createStepqClient({ baseUrl: stack.server.url, protocol, httpVersion: protocol === "grpc" ? "2" : "1.1" });
      // The deadline header by hand: a client-side timeout would end the call by itself.
      const deadline = protocol === "connect" ? { "connect-timeout-ms": "50" } : { "grpc-timeout": "50m" };
      const read = async () => {
        for await (const _ of client.steps.streamNarration({ stepId: step.id }, { headers: { [PAUSE_HEADER]: "300", ...deadline } })) {
          // drain
        }
      };
      const err = ConnectError.from(await read().then(() => "ended OK", (e: unknown) => e));
      expect([protocol, err.code]).toEqual([protocol, Code.DeadlineExceeded]);
    }
  });

  it("with no deadline, the same stream waits for Redis and ends OK", async () => {
    const step = await stack.client.submit(echo({ text: "done" }));
    await stack.client.wait(step.id);
    let n = 0;
    for await (const _ of stack.client.steps.streamNarration({ stepId: step.id }, { headers: { [PAUSE_HEADER]: "300" } })) n++;
    expect(n).toBeGreaterThan(0);
  });
});
