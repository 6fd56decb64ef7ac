/**
 * Issue 13, item 3: one follower's cursor never affects another follower,
 * a cursor past the end of what it reads is OUT_OF_RANGE, and cursors or
 * page tokens that are not stream ids (past 2^64) are INVALID_ARGUMENT
 * naming the field, over every way a stream is served: the direct writer
 * (Connect binary), Connect JSON and gRPC through Connect's handlers.
 */
import { type Client, Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { EventType } from "../gen/stepq/v1/events_pb.js";
import { JobService } from "../gen/stepq/v1/job_service_pb.js";
import { StepService } from "../gen/stepq/v1/step_service_pb.js";
import { compareCursors } from "../queue/log-entry.js";
import { connect } from "./helpers/redis.js";
import { echo, eventually, useStack } from "./helpers/stack.js";

const stack = await useStack();
const worker = await stack.worker({ concurrency: 4 });
void worker.runForever();
const admin = await connect(stack.redis.url);

const FAR_FUTURE = "9999999999999-0";
const MAX_ID = "18446744073709551615-18446744073709551615";

const transports: Record<string, Transport> = {
  "the direct writer (Connect binary)": createConnectTransport({ baseUrl: stack.server.url, httpVersion: "1.1" }),
  "Connect JSON": createConnectTransport({ baseUrl: stack.server.url, httpVersion: "1.1", useBinaryFormat: false }),
  gRPC: createGrpcTransport({ baseUrl: stack.server.url }),
};

function clients(t: Transport): { steps: Client<typeof StepService>; jobs: Client<typeof JobService> } {
  return { steps: createClient(StepService, t), jobs: createClient(JobService, t) };
}

/** Every message of `stream`, or the error it ended with. */
async function settle<T>(stream: AsyncIterable<T>): Promise<{ messages: T[]; error?: ConnectError }> {
  const messages: T[] = [];
  try {
    for await (const m of stream) messages.push(m);
    return { messages };
  } catch (e) {
    return { messages, error: ConnectError.from(e) };
  }
}

/** Whether this server's stream hub is blocked in XREAD now (it follows at least one key from a read position). */
async function hubReading(): Promise<boolean> {
  const list = (await admin.client("LIST")) as string;
  return list.split("\n").some((l) => l.includes("name=stepq-hub:blocking") && / cmd=xread /.test(l));
}

/**
 * Starts `stream` (the would-be poisoner) and waits until it either ended or
 * made the hub read from some position: a second follower opened after that
 * joins whatever read position the first one left.
 */
async function firstFollower<T>(stream: AsyncIterable<T>): Promise<Promise<{ messages: T[]; error?: ConnectError }>> {
  let done = false;
  const result = settle(stream).finally(() => {
    done = true;
  });
  await eventually(async () => done || (await hubReading()), (ok) => ok);
  return result;
}

describe("a follower's cursor never affects another follower", () => {
  it.each(Object.keys(transports))("StreamTokens over %s: a far-future cursor is OUT_OF_RANGE, and a normal follower opened after it gets every token", async (name) => {
    const { steps } = clients(transports[name] as Transport);
    const step = await stack.client.submit(echo({ text: "p ", tokenCount: 150, tokenDelayMs: 4 }));
    const poisoner = await firstFollower(steps.streamTokens({ stepId: step.id, afterCursor: FAR_FUTURE }));
    const normal = await settle(steps.streamTokens({ stepId: step.id }, { signal: AbortSignal.timeout(15_000) }));
    expect(normal.error).toBeUndefined();
    const tokens = normal.messages.flatMap((m) => (m.event.case === "tokens" ? m.event.value.tokens.map((t) => t.index) : []));
    expect(tokens).toEqual([...Array(150).keys()]);
    expect(normal.messages.at(-1)?.event.case).toBe("end");
    const bad = await poisoner;
    expect(bad.error?.code).toBe(Code.OutOfRange);
    expect(bad.error?.rawMessage).toMatch(new RegExp(`after_cursor ${FAR_FUTURE} is beyond the end of job \\w+'s log \\(last entry \\d+-\\d+\\)`));
    expect(bad.messages).toEqual([]);
  });

  it.each(Object.keys(transports))("StreamJobOutput over %s: a far-future cursor is OUT_OF_RANGE and leaves a normal follower its output", async (name) => {
    const { jobs } = clients(transports[name] as Transport);
    const step = await stack.client.submit(echo({ text: "q ", tokenCount: 100, tokenDelayMs: 4 }));
    const poisoner = await firstFollower(jobs.streamJobOutput({ jobId: step.jobId, afterCursor: FAR_FUTURE }));
    const normal = await settle(jobs.streamJobOutput({ jobId: step.jobId }, { signal: AbortSignal.timeout(15_000) }));
    expect(normal.error).toBeUndefined();
    const tokens = normal.messages.flatMap((m) => (m.event.case === "tokens" ? m.event.value.tokens : []));
    expect(tokens).toHaveLength(100);
    expect(normal.messages.at(-1)?.event.case).toBe("jobEnd");
    expect((await poisoner).error?.code).toBe(Code.OutOfRange);
  });

  it("WatchSteps: a far-future cursor is OUT_OF_RANGE, and a watcher opened after it sees new events", async () => {
    const poisoner = await firstFollower(stack.client.steps.watchSteps({ afterCursor: FAR_FUTURE }));
    const abort = new AbortController();
    const timeout = setTimeout(() => abort.abort(), 15_000);
    const seen: EventType[] = [];
    const watching = (async () => {
      try {
        for await (const res of stack.client.steps.watchSteps({ types: [EventType.STEP_SUCCEEDED] }, { signal: abort.signal })) {
          seen.push(res.event!.type);
          abort.abort();
        }
      } catch (e) {
        if (!abort.signal.aborted) throw e;
      }
    })();
    await eventually(async () => (await hubReading()) && stack.server.hub.size > 0, (ok) => ok);
    await stack.client.submit(echo({ text: "watched" }));
    await watching;
    clearTimeout(timeout);
    expect(seen).toEqual([EventType.STEP_SUCCEEDED]);
    const bad = await poisoner;
    expect(bad.error?.code).toBe(Code.OutOfRange);
    expect(bad.error?.rawMessage).toMatch(/after_cursor 9999999999999-0 is beyond the end of the events stream \(last event \d+-\d+\)/);
  });

  it("a cursor equal to the newest entry is not beyond the end: the stream waits for what comes next", async () => {
    const step = await stack.client.submit(echo({ text: "w ", tokenCount: 30, tokenDelayMs: 10 }));
    let cursor = "";
    for await (const res of stack.client.steps.streamTokens({ stepId: step.id })) {
      if (res.event.case === "tokens") cursor = res.event.value.cursor;
      if (res.event.case === "tokens" && res.event.value.tokens.some((t) => t.index >= 5)) break;
    }
    const rest = await settle(stack.client.steps.streamTokens({ stepId: step.id, afterCursor: cursor }));
    expect(rest.error).toBeUndefined();
    expect(rest.messages.at(-1)?.event.case).toBe("end");
  });
});

describe("cursors and page tokens that are not stream ids", () => {
  const PAST_2_64 = ["99999999999999999999-0", "18446744073709551616-0", "1-18446744073709551616"];

  async function failure(p: Promise<unknown> | AsyncIterable<unknown>): Promise<ConnectError | undefined> {
    try {
      if (Symbol.asyncIterator in (p as object)) for await (const _ of p as AsyncIterable<unknown>) break;
      else await p;
    } catch (e) {
      return ConnectError.from(e);
    }
    return undefined;
  }

  it.each(Object.keys(transports))("over %s, every stream's after_cursor past 2^64 is INVALID_ARGUMENT naming the field", async (name) => {
    const { steps, jobs } = clients(transports[name] as Transport);
    const step = await stack.client.submit(echo({ text: "x" }));
    for (const cursor of PAST_2_64) {
      const calls: [string, AsyncIterable<unknown>][] = [
        ["StreamTokens", steps.streamTokens({ stepId: step.id, afterCursor: cursor })],
        ["StreamNarration", steps.streamNarration({ stepId: step.id, afterCursor: cursor })],
        ["StreamJobOutput", jobs.streamJobOutput({ jobId: step.jobId, afterCursor: cursor })],
        ["WatchJob", jobs.watchJob({ jobId: step.jobId, afterCursor: cursor })],
        ["WatchSteps", steps.watchSteps({ afterCursor: cursor })],
      ];
      for (const [rpc, call] of calls) {
        const err = await failure(call);
        expect(err?.code, `${rpc} ${cursor}`).toBe(Code.InvalidArgument);
        expect(err?.rawMessage, `${rpc} ${cursor}`).toMatch(/^after_cursor: .* is not a cursor/);
      }
    }
  });

  it("ListJobs and ListSteps page tokens past 2^64, or 0-0, are INVALID_ARGUMENT naming page_token", async () => {
    for (const token of [...PAST_2_64, "0-0"]) {
      for (const [rpc, call] of [
        ["ListJobs", stack.client.jobs.listJobs({ pageToken: token })],
        ["ListSteps", stack.client.steps.listSteps({ pageToken: `j:${token}` })],
      ] as const) {
        const err = await failure(call);
        expect(err?.code, `${rpc} ${token}`).toBe(Code.InvalidArgument);
        expect(err?.rawMessage, `${rpc} ${token}`).toMatch(/^page_token: is not a token returned by a previous/);
      }
    }
  });

  it("the largest stream id is a cursor, beyond the end of anything: OUT_OF_RANGE, not internal", async () => {
    const step = await stack.client.submit(echo({ text: "y" }));
    await stack.client.wait(step.id);
    const tokens = await failure(stack.client.steps.streamTokens({ stepId: step.id, afterCursor: MAX_ID }));
    expect(tokens?.code).toBe(Code.OutOfRange);
    expect(tokens?.rawMessage).toMatch(/is beyond the end of job/);
    const watch = await failure(stack.client.steps.watchSteps({ afterCursor: MAX_ID }));
    expect(watch?.code).toBe(Code.OutOfRange);
    expect(watch?.rawMessage).toMatch(/is beyond the end of the events stream/);
  });

  it("compareCursors orders ids past 2^53 exactly", () => {
    expect(compareCursors("9007199254740993-0", "9007199254740992-0")).toBe(1);
    expect(compareCursors("1-9007199254740993", "1-9007199254740992")).toBe(1);
    expect(compareCursors("18446744073709551615-0", "18446744073709551614-5")).toBe(1);
    expect(compareCursors("00012-3", "12-3")).toBe(0);
    expect(compareCursors("5-10", "10-5")).toBe(-1);
    expect(compareCursors("0-1", "0-1")).toBe(0);
  });
});
