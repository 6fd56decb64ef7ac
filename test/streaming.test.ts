import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import { createStepqClient } from "../clients/node/client.js";
import { EventType } from "../gen/stepq/v1/events_pb.js";
import { JobState } from "../gen/stepq/v1/job_pb.js";
import { StepState } from "../gen/stepq/v1/step_pb.js";
import { createStreamHub } from "../server/stream-hub.js";
import { createRedis, waitReady } from "../queue/connection.js";
import { createLogger } from "../runtime/logger.js";
import { useFlakyProxy } from "./helpers/flaky-proxy.js";
import { connect } from "./helpers/redis.js";
import { echo, useStack } from "./helpers/stack.js";

const stack = await useStack();
const worker = await stack.worker({ concurrency: 8 });
void worker.runForever();

/** Collects every token index -> text of a StreamTokens call, failing on a repeat. */
function expectNoRepeat(seen: Map<number, string>, index: number, text: string) {
  expect(seen.has(index), `token ${index} delivered twice`).toBe(false);
  seen.set(index, text);
}

describe("token and narration streams", () => {
  it("a stream resumed from a cursor continues with no gap and no repeat", async () => {
    const step = await stack.client.submit(echo({ tokenCount: 300, tokenDelayMs: 1 }));
    const seen = new Map<number, string>();
    let cursor = "";
    let messages = 0;
    // First connection: take a few messages, then hang up mid-stream.
    for await (const res of stack.client.steps.streamTokens({ stepId: step.id })) {
      if (res.event.case !== "tokens") continue;
      for (const t of res.event.value.tokens) expectNoRepeat(seen, t.index, t.text);
      cursor = res.event.value.cursor;
      if (++messages === 3) break;
    }
    expect(seen.size).toBeGreaterThan(0);
    expect(seen.size).toBeLessThan(300);
    // Second connection resumes after the last cursor.
    let ended = false;
    for await (const res of stack.client.steps.streamTokens({ stepId: step.id, afterCursor: cursor })) {
      if (res.event.case === "tokens") for (const t of res.event.value.tokens) expectNoRepeat(seen, t.index, t.text);
      if (res.event.case === "end") ended = true;
    }
    expect(ended).toBe(true);
    expect([...seen.keys()].sort((a, b) => a - b)).toEqual([...Array(300).keys()]);
  });

  it.each(["1.1", "2"] as const)("follow() over HTTP/%s survives connections cut mid-stream and yields every token exactly once", async (httpVersion) => {
    // Over HTTP/2 a cut connection resets its streams with CANCEL, which
    // follow() must take for a dropped connection, not for the caller's cancel.
    const proxy = await useFlakyProxy({ host: "127.0.0.1", port: stack.server.port }, 1500);
    const client = createStepqClient({ baseUrl: proxy.url, httpVersion });
    const step = await stack.client.submit(echo({ text: "one two three four", tokenCount: 400, tokenDelayMs: 1 }));
    const seen = new Map<number, string>();
    let reconnects = 0;
    let end;
    for await (const e of client.follow(step.id, { onReconnect: () => reconnects++ })) {
      if (e.type === "tokens") for (const t of e.tokens) expectNoRepeat(seen, t.index, t.text);
      if (e.type === "end") end = e;
    }
    expect(proxy.cuts).toBeGreaterThan(1);
    expect(reconnects).toBeGreaterThan(1);
    expect(end?.state).toBe(StepState.SUCCEEDED);
    expect(seen.size).toBe(400);
    const done = await stack.client.get(step.id);
    expect([...seen.entries()].sort(([a], [b]) => a - b).map(([, t]) => t).join("")).toBe(done.result?.text);
  });

  it("a late subscriber to a finished step gets the whole output, then the end", async () => {
    const step = await stack.client.submit(echo({ text: "late but complete", tokenCount: 50 }));
    await stack.client.wait(step.id);
    const tokens: string[] = [];
    const kinds: string[] = [];
    for await (const res of stack.client.steps.streamTokens({ stepId: step.id })) {
      kinds.push(res.event.case ?? "");
      if (res.event.case === "tokens") tokens.push(...res.event.value.tokens.map((t) => t.text));
    }
    expect(kinds[kinds.length - 1]).toBe("end");
    expect(tokens.length).toBe(50);
    const narration: string[] = [];
    let end;
    for await (const res of stack.client.steps.streamNarration({ stepId: step.id })) {
      if (res.event.case === "narration") narration.push(res.event.value.text);
      if (res.event.case === "end") end = res.event.value;
    }
    expect(narration).toEqual(["echo: streaming 50 tokens"]);
    expect(end?.state).toBe(StepState.SUCCEEDED);
    expect(end?.usage?.completionTokens).toBe(50);
  });

  it("a follower that subscribes while the step is still queued hears why it waits, then receives everything once it runs", async () => {
    const other = await stack.client.steps.submitStep({ operation: { kind: { case: "infer", value: { model: "nobody-serves-this", prompt: "x" } } } });
    // Nothing serves that route: the follower is told so (server/queue-position.ts), and waits. Cancel it to end the stream.
    const events: string[] = [];
    let told: () => void = () => {};
    const heard = new Promise<void>((r) => (told = r));
    const following = (async () => {
      for await (const e of stack.client.follow(other.step!.id)) {
        events.push(e.type === "end" ? `end:${e.state}` : e.type === "narration" ? `narration:${e.text}` : e.type);
        told();
      }
    })();
    await heard;
    await stack.client.cancel(other.step!.id, "test is done");
    await following;
    expect(events).toEqual([
      "narration:1st in line for infer:nobody-serves-this — no live worker serves infer:nobody-serves-this; it waits until one starts",
      `end:${StepState.CANCELLED}`,
    ]);
  });

  it("StreamJobOutput interleaves tokens and narration, names the step on each message, and ends with JobEnd", async () => {
    const step = await stack.client.submit(echo({ text: "a b", tokenCount: 10 }));
    await stack.client.wait(step.id);
    const cases: string[] = [];
    for await (const res of stack.client.jobs.streamJobOutput({ jobId: step.jobId })) {
      cases.push(res.event.case ?? "");
      if (res.event.case === "tokens" || res.event.case === "narration") {
        expect(res.event.value.stepName).toBe("main");
        expect(res.event.value.stepId).toBe(step.id);
      }
      if (res.event.case === "jobEnd") expect(res.event.value.state).toBe(JobState.SUCCEEDED);
    }
    expect(cases[0]).toBe("narration");
    expect(cases).toContain("tokens");
    expect(cases.slice(-2)).toEqual(["stepEnd", "jobEnd"]);
  });

  it("WatchJob replays the job's events from the beginning and ends after its final event", async () => {
    const step = await stack.client.submit(echo({ text: "x" }));
    await stack.client.wait(step.id);
    const types: EventType[] = [];
    let cursor = "";
    for await (const res of stack.client.jobs.watchJob({ jobId: step.jobId })) {
      types.push(res.event!.type);
      if (types.length === 2) cursor = res.event!.cursor;
    }
    expect(types).toEqual([
      EventType.JOB_SUBMITTED,
      EventType.STEP_SUBMITTED,
      EventType.STEP_CLAIMED,
      EventType.STEP_SUCCEEDED,
      EventType.JOB_SUCCEEDED,
    ]);
    const resumed: EventType[] = [];
    for await (const res of stack.client.jobs.watchJob({ jobId: step.jobId, afterCursor: cursor })) resumed.push(res.event!.type);
    expect(resumed).toEqual(types.slice(2));
  });

  it("WatchSteps delivers new lifecycle events, filtered by job and type", async () => {
    const abort = new AbortController();
    const seen: EventType[] = [];
    const step = await stack.client.submit(echo({ delayMs: 300 }));
    const watching = (async () => {
      try {
        for await (const res of stack.client.steps.watchSteps(
          { jobId: step.jobId, types: [EventType.STEP_CLAIMED, EventType.STEP_SUCCEEDED, EventType.JOB_SUCCEEDED] },
          { signal: abort.signal },
        )) {
          seen.push(res.event!.type);
          expect(res.event!.jobId).toBe(step.jobId);
          if (res.event!.type === EventType.JOB_SUCCEEDED) abort.abort();
        }
      } catch (e) {
        if (!abort.signal.aborted) throw e;
      }
    })();
    await watching;
    expect(seen).toContain(EventType.STEP_SUCCEEDED);
    expect(seen[seen.length - 1]).toBe(EventType.JOB_SUCCEEDED);
  });
});

describe("the stream hub", () => {
  it("delivers every entry in order to a slow reader that fell behind its buffer", async () => {
    const redis = await connect(stack.redis.url);
    const reader = createRedis(stack.redis.url, "blocking");
    await waitReady(reader);
    const hub = createStreamHub({ redis, reader, maxBuffered: 10, batch: 7 });
    const key = "test:{hub}:slow";
    for (let i = 0; i < 200; i++) await redis.xadd(key, "*", "n", String(i));
    const sub = hub.subscribe(key, "0-0");
    const got: number[] = [];
    const writer = (async () => {
      for (let i = 200; i < 400; i++) await redis.xadd(key, "*", "n", String(i));
    })();
    for await (const batch of sub) {
      for (const e of batch) got.push(Number(e.fields[1]));
      await new Promise((r) => setTimeout(r, 2)); // a slow consumer
      if (got.length >= 400) break;
    }
    await writer;
    expect(got).toEqual([...Array(400).keys()]);
    hub.close();
    reader.disconnect();
  });

  it("serves many subscribers of many keys with one blocking connection", async () => {
    const redis = await connect(stack.redis.url);
    const reader = createRedis(stack.redis.url, "blocking", { name: "many-keys-hub" });
    await waitReady(reader);
    const hub = createStreamHub({ redis, reader });
    const keys = Array.from({ length: 50 }, (_, i) => `test:{hub}:many:${i}`);
    const results = keys.map(async (key) => {
      const got: string[] = [];
      for await (const batch of hub.subscribe(key, "0-0")) {
        got.push(...batch.map((e) => e.fields[1] as string));
        if (got.length === 5) break;
      }
      return got;
    });
    await new Promise((r) => setTimeout(r, 50));
    for (let n = 0; n < 5; n++) for (const key of keys) await redis.xadd(key, "*", "v", `${key}#${n}`);
    const all = await Promise.all(results);
    all.forEach((got, i) => expect(got).toEqual([0, 1, 2, 3, 4].map((n) => `${keys[i]}#${n}`)));
    const clients = (await redis.client("LIST")) as string;
    const mine = clients.split("\n").filter((l) => l.includes("name=many-keys-hub"));
    expect(mine.length).toBe(1);
    hub.close();
    reader.disconnect();
  });
});

describe("clients that go away", () => {
  it("a client that disconnects mid-stream is not logged as an unexpected server error", async () => {
    const errors: string[] = [];
    const other = await useStack({ logger: createLogger("server", { level: "error", write: (l) => errors.push(l) }) });
    const w = await other.worker();
    void w.runForever();
    const proxy = await useFlakyProxy({ host: "127.0.0.1", port: other.server.port }, 1500);
    const step = await other.client.submit(echo({ text: "a b c", tokenCount: 100, tokenDelayMs: 2 }));
    let reconnects = 0;
    for await (const _ of createStepqClient({ baseUrl: proxy.url }).follow(step.id, { onReconnect: () => reconnects++ })) {
      /* follow to the end through cut connections */
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(reconnects).toBeGreaterThan(0);
    expect(errors).toEqual([]);
    await w.stop();
  });

  it("follow() leaves no abort listener on the caller's signal, even when the step ends before its job", async () => {
    const { job } = await stack.client.jobs.submitJob({
      steps: [
        { name: "first", operation: echo({ text: "a b", tokenCount: 3 }) },
        { name: "second", operation: echo({ text: "c", delayMs: 300 }) },
      ],
    });
    const signal = new AbortController().signal;
    for (let i = 0; i < 3; i++) {
      for await (const _ of stack.client.follow(job!.steps[0]!.id, { signal })) {
        /* to the first step's end */
      }
    }
    expect(getEventListeners(signal, "abort")).toHaveLength(0);
  });
});

