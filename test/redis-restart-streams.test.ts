/**
 * Issue 13, item 7 (streams part): a Redis that restarts without its data
 * (no persistence) takes open streams' logs and records with it. Those
 * streams end with DATA_LOSS within a few seconds of Redis coming back,
 * instead of waiting until their clients give up.
 */
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, describe, expect, it } from "vitest";
import { createStepqClient } from "../clients/node/client.js";
import { JobService } from "../gen/stepq/v1/job_service_pb.js";
import { StepService } from "../gen/stepq/v1/step_service_pb.js";
import { DataLossError } from "../queue/errors.js";
import { createQueue } from "../queue/queue.js";
import { createRedis, waitReady } from "../queue/connection.js";
import { buildServer } from "../server/main.js";
import { createStreamHub, type HubEntry } from "../server/stream-hub.js";
import { createEchoEngine } from "../worker/engines/echo.js";
import { createWorker } from "../worker/worker.js";
import { connect, useRedis } from "./helpers/redis.js";
import { echo, eventually, quiet } from "./helpers/stack.js";
import { resultBytes } from "./helpers/queue.js";

// No persistence: a restart starts empty.
const redis = await useRedis();
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

const json = createConnectTransport({ baseUrl: server.url, httpVersion: "1.1", useBinaryFormat: false });
const grpc = createGrpcTransport({ baseUrl: server.url });

interface Watched {
  /** Resolves once the stream delivered its first message. */
  started: Promise<void>;
  /** Resolves with how the stream ended, and when. */
  ended: Promise<{ code: Code | undefined; message: string; at: number }>;
}

/** Reads `stream` to its end (or until 20 s have passed). */
function watch(open: (signal: AbortSignal) => AsyncIterable<unknown>): Watched {
  let started!: () => void;
  const startedP = new Promise<void>((r) => (started = r));
  const ended = (async () => {
    try {
      for await (const _ of open(AbortSignal.timeout(20_000))) started();
      return { code: undefined, message: "ended normally", at: Date.now() };
    } catch (e) {
      const err = ConnectError.from(e);
      return { code: err.code, message: err.rawMessage, at: Date.now() };
    }
  })();
  return { started: startedP, ended };
}

describe("streams open while Redis restarts without its data", () => {
  it("end with DATA_LOSS soon after Redis is back, over every protocol, for job logs and the events stream", async () => {
    const events = watch((signal) => client.steps.watchSteps({}, { signal }));
    const step = await client.submit(echo({ text: "slow ", tokenCount: 3000, tokenDelayMs: 10 }));
    const streams: Record<string, Watched> = {
      "StreamTokens, direct writer": watch((signal) => client.steps.streamTokens({ stepId: step.id }, { signal })),
      "StreamJobOutput, Connect JSON": watch((signal) => createClient(JobService, json).streamJobOutput({ jobId: step.jobId }, { signal })),
      "WatchJob, gRPC": watch((signal) => createClient(JobService, grpc).watchJob({ jobId: step.jobId }, { signal })),
      "StreamNarration, gRPC": watch((signal) => createClient(StepService, grpc).streamNarration({ stepId: step.id }, { signal })),
      "WatchSteps, direct Connect": events,
    };
    await Promise.all(Object.values(streams).map((s) => s.started));

    await redis.kill("SIGKILL");
    await redis.restart();
    const back = Date.now();

    for (const [name, s] of Object.entries(streams)) {
      const end = await s.ended;
      expect(end.code, `${name}: ${end.message}`).toBe(Code.DataLoss);
      expect(end.at - back, name).toBeLessThan(5000);
      if (name.startsWith("WatchSteps")) expect(end.message).toMatch(/the queue's events are gone: Redis lost its data .*watch again without a cursor/);
      else expect(end.message).toBe(`job ${step.jobId}'s data is gone: Redis lost it while this stream was open (it restarted without persistence); the job no longer exists, submit it again`);
    }
    expect(server.hub.stats()).toMatchObject({ subscriptions: 0, bufferedBytes: 0 });
    expect(server.hub.stats().lost).toBe(5);

    // The hub goes on: a new job's stream works (its first events; the worker may take a while to recover).
    const after = await client.submit(echo({ text: "after" }));
    for await (const res of client.jobs.watchJob({ jobId: after.jobId })) {
      expect(res.event?.jobId).toBe(after.jobId);
      break;
    }
  });
});

describe("streams open while Redis restarts with its data (AOF, fsync always)", () => {
  it("go on where they were: no DATA_LOSS, every token once, then the end", async () => {
    const kept = await useRedis({ appendFsync: "always" });
    const keptServer = await buildServer({ redisUrl: kept.url, port: 0, logger: quiet, shutdownGraceMs: 200 });
    // This test plays the worker with the queue's own calls, so that only
    // the stream's side of the restart is tested (not how fast a worker recovers).
    const queue = createQueue({ redis: await connect(kept.url) });
    try {
      const keptClient = createStepqClient({ baseUrl: keptServer.url });
      const step = await keptClient.submit(echo({ text: "kept" }));
      const [lease] = (await queue.claim({ workerId: "test", routes: ["echo"], leaseMs: 60_000, max: 1 })).steps;
      const tokens = (from: number) => ({ firstSeq: from, entries: [{ kind: "tokens" as const, firstIndex: from, texts: [`t${from} `] }] });
      await queue.appendOutput(lease!, tokens(0));
      const seen: number[] = [];
      let end = false;
      for await (const res of keptClient.steps.streamTokens({ stepId: step.id }, { signal: AbortSignal.timeout(20_000) })) {
        if (res.event.case === "end") end = true;
        if (res.event.case !== "tokens") continue;
        seen.push(...res.event.value.tokens.map((t) => t.index));
        if (seen.length === 1) {
          await kept.kill("SIGKILL");
          await kept.restart();
          // The stream's log and the lease are still there: the step goes on.
          await eventually(() => queue.appendOutput(lease!, tokens(1)).then(() => true, () => false), (ok) => ok);
          await queue.appendOutput(lease!, tokens(2));
          await queue.complete(lease!, resultBytes("t0 t1 t2 "));
        }
      }
      expect(end).toBe(true);
      expect(seen).toEqual([0, 1, 2]);
      expect(keptServer.hub.stats().lost).toBe(0);
    } finally {
      await keptServer.close();
    }
  });
});

describe("a subscriber still catching up (reading pages) when Redis goes away", () => {
  /** A hub over `url` with small pages (many catch-up reads), a stream of 300 entries, and a subscriber that took its first page. */
  async function catchingUp(url: string) {
    const cmd = await connect(url);
    const reader = createRedis(url, "blocking", { name: "stepq-test-reader" });
    await waitReady(reader);
    const hub = createStreamHub({ redis: cmd, reader, pageBytes: 2048 });
    const key = "test:{hub}:catch-up";
    const p = cmd.pipeline();
    for (let i = 0; i < 300; i++) p.xadd(key, "*", "n", String(i), "pad", "x".repeat(100));
    await p.exec();
    const it = hub.subscribe(key, "0-0")[Symbol.asyncIterator]();
    const got: number[] = [];
    const first = await it.next();
    for (const e of first.value as HubEntry[]) got.push(Number(e.fields[1]));
    return { hub, it, got, close: () => (hub.close(), reader.disconnect()) };
  }

  /** Reads `it` to 300 entries, or to its end; returns how it ended. */
  async function readOn(it: AsyncIterator<HubEntry[]>, got: number[]): Promise<unknown> {
    try {
      while (got.length < 300) {
        const r = await it.next();
        if (r.done) return "done";
        for (const e of r.value) got.push(Number(e.fields[1]));
      }
      return "all";
    } catch (e) {
      return e;
    }
  }

  it("retries its reads and goes on when Redis is back with its data: every entry once, in order", async () => {
    const kept = await useRedis({ appendFsync: "always" });
    const { hub, it, got, close } = await catchingUp(kept.url);
    try {
      expect(got.length).toBeLessThan(300);
      await kept.kill("SIGKILL");
      const ended = readOn(it, got);
      await eventually(async () => hub.stats().retried, (n) => n > 0);
      await kept.restart();
      expect(await ended).toBe("all");
      expect(got).toEqual([...Array(300).keys()]);
      expect(hub.stats().lost).toBe(0);
    } finally {
      close();
    }
  });

  it("ends DATA_LOSS when Redis is back without its data", async () => {
    const empty = await useRedis();
    const { hub, it, got, close } = await catchingUp(empty.url);
    try {
      await empty.kill("SIGKILL");
      const ended = readOn(it, got);
      await eventually(async () => hub.stats().retried, (n) => n > 0);
      await empty.restart();
      const end = await ended;
      expect(end, String(end)).toBeInstanceOf(DataLossError);
      expect(hub.stats().lost).toBe(1);
    } finally {
      close();
    }
  });
});
