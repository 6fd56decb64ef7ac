/**
 * Issue 13, item 6: readers that stop reading cost a bounded number of
 * bytes, never delay anyone else, resume from their own cursor when they
 * read again, and are ended with RESOURCE_EXHAUSTED if they stay stalled.
 * Real Redis, a real server, real sockets that stop reading.
 */
import * as http2 from "node:http2";
import { connect as netConnect, type Socket } from "node:net";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { StreamTokensRequestSchema, StreamTokensResponseSchema } from "../gen/stepq/v1/step_service_pb.js";
import { createRedis, waitReady } from "../queue/connection.js";
import { createStreamHub, type HubEntry } from "../server/stream-hub.js";
import { connect } from "./helpers/redis.js";
import { echo, eventually, useStack } from "./helpers/stack.js";

const KiB = 1024;
// Steps here stream up to 1M tokens (~8 MB): above the default output cap, which is not what is tested.
const limits = { maxOutputBytes: 64 * 1024 * KiB, maxJobBytes: 128 * 1024 * KiB };
const stack = await useStack({ limits, maxStreamBufferBytes: 128 * KiB, maxStreamBuffersBytes: 1024 * KiB, streamStallTimeoutMs: 2000 });
const worker = await stack.worker({ concurrency: 2 });
void worker.runForever();
const redis = await connect(stack.redis.url);

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
function heapUsed(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/** Resolves once Redis served no XRANGE for five polls in a row, 20 ms apart: the hubs read nothing more. */
async function readsSettled(): Promise<void> {
  const xranges = async () => /cmdstat_xrange:calls=(\d+)/.exec(await redis.info("commandstats"))?.[1];
  let last: string | undefined;
  let same = 0;
  while (same < 5) {
    const v = await xranges();
    same = v === last ? same + 1 : 0;
    last = v;
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function newHub(o: { maxStreamBytes: number; maxTotalBytes: number; pageBytes: number }) {
  const reader = createRedis(stack.redis.url, "blocking");
  await waitReady(reader);
  const hub = createStreamHub({ redis, reader, ...o });
  return {
    hub,
    close: () => {
      hub.close();
      reader.disconnect();
    },
  };
}

async function fill(key: string, n: number, bytes: number, from = 0) {
  const pad = "x".repeat(bytes);
  for (let i = from; i < from + n; i += 100) {
    const p = redis.pipeline();
    for (let j = i; j < Math.min(from + n, i + 100); j++) p.xadd(key, "*", "n", String(j), "pad", pad);
    await p.exec();
  }
}

/** Reads `it` until `n` entries came; returns their numbers. */
async function readTo(it: AsyncIterator<HubEntry[]>, n: number, got: number[] = []): Promise<number[]> {
  while (got.length < n) {
    const r = await it.next();
    if (r.done) break;
    for (const e of r.value) got.push(Number(e.fields[1]));
  }
  return got;
}

describe("the stream hub bounds what readers that stop reading hold", () => {
  it("reads a stream of 1 MB entries one entry a read, never hundreds at once", async () => {
    const { hub, close } = await newHub({ maxStreamBytes: 64 * KiB, maxTotalBytes: 1024 * KiB, pageBytes: 64 * KiB });
    const key = "test:{slow}:large";
    await fill(key, 24, 1024 * KiB);
    const it = hub.subscribe(key, "0-0")[Symbol.asyncIterator]();
    let most = 0;
    const got: number[] = [];
    while (got.length < 24) {
      const r = await it.next();
      most = Math.max(most, r.value.length);
      for (const e of r.value as HubEntry[]) got.push(Number(e.fields[1]));
      expect(hub.bufferedBytes).toBeLessThanOrEqual(2 * 1100 * KiB);
    }
    expect(got).toEqual([...Array(24).keys()]);
    // The hub used to read 500 entries a page: the whole 24 MB in one reply.
    expect(most).toBe(1);
    await it.return?.();
    close();
  });


  it("forty late subscribers of a 4 MB stream that take one batch and stop hold a page each, not the stream", async () => {
    const { hub, close } = await newHub({ maxStreamBytes: 64 * KiB, maxTotalBytes: 1024 * KiB, pageBytes: 16 * KiB });
    const key = "test:{slow}:late";
    await fill(key, 4000, 1000);
    const before = heapUsed();
    const stalled = Array.from({ length: 40 }, () => hub.subscribe(key, "0-0")[Symbol.asyncIterator]());
    const firsts = await Promise.all(stalled.map((it) => it.next()));
    expect(firsts.every((r) => !r.done && Number(r.value[0]?.fields[1]) === 0)).toBe(true);
    await readsSettled();
    // The hub used to read the whole stream into each subscriber's queue: 40 x 4 MB.
    expect(heapUsed() - before).toBeLessThan(16 * 1024 * KiB);
    // At most one page read ahead per subscriber (16 KiB, plus the page that proved the entries' size).
    expect(hub.bufferedBytes).toBeLessThanOrEqual(40 * 2 * 17 * KiB);

    // They read again: each gets every entry once, in order, from where it stopped.
    const got = await Promise.all(stalled.map((it, i) => readTo(it, 4000, (firsts[i]!.value as HubEntry[]).map((e) => Number(e.fields[1])))));
    for (const g of got) expect(g).toEqual([...Array(4000).keys()]);
    for (const it of stalled) await it.return?.();
    expect(hub.bufferedBytes).toBe(0);
    close();
  });

  it("live subscribers that stop reading are paused at their bound while the stream grows, and a reader alongside gets everything", async () => {
    const bounds = { maxStreamBytes: 32 * KiB, maxTotalBytes: 128 * KiB, pageBytes: 8 * KiB };
    const { hub, close } = await newHub(bounds);
    const key = "test:{slow}:live";
    await redis.xadd(key, "*", "n", "-1");
    const stalled = Array.from({ length: 10 }, () => hub.subscribe(key, "0-0")[Symbol.asyncIterator]());
    await Promise.all(stalled.map((it) => it.next()));
    const reader = hub.subscribe(key, "0-0")[Symbol.asyncIterator]();
    await reader.next();
    await eventually(async () => hub.size, (n) => n === 1); // everyone attached live
    let most = 0;
    const sampler = setInterval(() => {
      most = Math.max(most, hub.bufferedBytes);
    }, 2);
    const reading = readTo(reader, 3000);
    for (let chunk = 0; chunk < 3000; chunk += 100) {
      await fill(key, 100, 1000, chunk);
      most = Math.max(most, hub.bufferedBytes);
    }
    expect(await reading).toEqual([...Array(3000).keys()]);
    clearInterval(sampler);
    // The total, plus at most one live batch (one read's worth) for each of the eleven.
    expect(most).toBeLessThanOrEqual(bounds.maxTotalBytes + 11 * 2 * bounds.pageBytes);
    expect(hub.stats().pauses).toBeGreaterThanOrEqual(10);
    const resumed = await Promise.all(stalled.map((it) => readTo(it, 3000)));
    for (const g of resumed) expect(g).toEqual([...Array(3000).keys()]);
    for (const it of [...stalled, reader]) await it.return?.();
    expect(hub.bufferedBytes).toBe(0);
    close();
  });
});

function envelope(bytes: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + bytes.length);
  out.writeUInt32BE(bytes.length, 1);
  out.set(bytes, 5);
  return out;
}

const tokensRequest = (stepId: string) => envelope(toBinary(StreamTokensRequestSchema, create(StreamTokensRequestSchema, { stepId })));

/** A StreamTokens follower over HTTP/1.1 (the direct writer) that sends its request and stops reading. */
function stalledLane(stepId: string, contentType = "application/connect+proto"): Promise<Socket> {
  const body = contentType.endsWith("json") ? envelope(Buffer.from(JSON.stringify({ stepId }))) : tokensRequest(stepId);
  return new Promise((resolve, reject) => {
    const socket = netConnect(stack.server.port, "127.0.0.1", () => {
      socket.pause();
      socket.write(`POST /stepq.v1.StepService/StreamTokens HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${contentType}\r\nContent-Length: ${body.length}\r\n\r\n`);
      socket.write(body);
      resolve(socket);
    });
    socket.on("error", reject);
  });
}

/** A StreamTokens follower over gRPC (HTTP/2, Connect's handlers) that stops reading; resolves with its reset code. */
function stalledGrpc(stepId: string): { closed: Promise<number | undefined>; session: http2.ClientHttp2Session } {
  const session = http2.connect(stack.server.url);
  session.on("error", () => {});
  const stream = session.request({ ":method": "POST", ":path": "/stepq.v1.StepService/StreamTokens", "content-type": "application/grpc", te: "trailers" });
  stream.on("error", () => {});
  stream.end(tokensRequest(stepId));
  stream.pause();
  return { session, closed: new Promise((resolve) => stream.on("close", () => resolve(stream.rstCode))) };
}

/** Everything a paused socket has and will get, once it reads again, up to the end of a chunked response. */
function readChunkedBody(socket: Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    const done = () => {
      const all = Buffer.concat(parts);
      const start = all.indexOf("\r\n\r\n") + 4;
      const chunks: Buffer[] = [];
      let p = start;
      for (;;) {
        const eol = all.indexOf("\r\n", p);
        const size = Number.parseInt(all.subarray(p, eol).toString(), 16);
        if (!size) break;
        chunks.push(all.subarray(eol + 2, eol + 2 + size));
        p = eol + 2 + size + 2;
      }
      resolve(Buffer.concat(chunks));
    };
    socket.on("data", (d: Buffer) => {
      parts.push(d);
      if (d.subarray(-5).toString() === "0\r\n\r\n") done();
    });
    socket.on("close", done);
    socket.on("error", reject);
    socket.resume();
  });
}

/** The messages of a Connect streaming response body, and its end-of-stream message. */
function framesOf(body: Buffer): { messages: Buffer[]; end?: { error?: { code: string; message: string } } } {
  const messages: Buffer[] = [];
  let end;
  for (let p = 0; p < body.length; ) {
    const flags = body[p] as number;
    const len = body.readUInt32BE(p + 1);
    const data = body.subarray(p + 5, p + 5 + len);
    p += 5 + len;
    if (flags & 2) end = JSON.parse(data.toString());
    else messages.push(data);
  }
  return { messages, end };
}

describe("a server with readers that stop reading", () => {
  it("keeps its buffered bytes under the bound, serves a normal reader every token, and ends the stalled readers with RESOURCE_EXHAUSTED", async () => {
    const TOKENS = 600_000;
    const step = await stack.client.submit(echo({ text: "", tokenCount: TOKENS }));
    const lanes = await Promise.all(Array.from({ length: 6 }, () => stalledLane(step.id)));
    const json = await stalledLane(step.id, "application/connect+json");
    const grpc = Array.from({ length: 4 }, () => stalledGrpc(step.id));
    let most = 0;
    const sampler = setInterval(() => {
      most = Math.max(most, stack.server.hub.bufferedBytes);
    }, 5);
    let got = 0;
    let next = 0;
    for await (const e of stack.client.follow(step.id)) {
      if (e.type !== "tokens") continue;
      for (const t of e.tokens) expect(t.index).toBe(next++);
      got += e.tokens.length;
    }
    clearInterval(sampler);
    expect(got).toBe(TOKENS);
    // max-stream-buffers-bytes (1 MiB), plus at most one live batch per stream.
    expect(most).toBeLessThanOrEqual(1024 * KiB + 12 * 64 * KiB);
    expect(stack.server.hub.stats().pauses).toBeGreaterThan(0);

    // Stalled for the stall timeout (2 s): ended. gRPC readers see their stream reset with ENHANCE_YOUR_CALM (RESOURCE_EXHAUSTED).
    for (const g of grpc) expect(await g.closed).toBe(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    await eventually(async () => stack.server.hub.stats().subscriptions, (n) => n === 0);
    expect(stack.server.hub.stats().stalled).toBe(11);
    expect(stack.server.hub.bufferedBytes).toBe(0);

    // A Connect reader over HTTP/1.1 that reads again gets what was sent, in order, then RESOURCE_EXHAUSTED with its cursor advice.
    const { messages, end } = framesOf(await readChunkedBody(lanes[0] as Socket));
    let index = 0;
    for (const data of messages) {
      const res = fromBinary(StreamTokensResponseSchema, data);
      if (res.event.case === "tokens") for (const t of res.event.value.tokens) expect(t.index).toBe(index++);
    }
    expect(index).toBeGreaterThan(0);
    expect(index).toBeLessThan(TOKENS);
    expect(end?.error?.code).toBe("resource_exhausted");
    expect(end?.error?.message).toMatch(/took nothing for 2 s .* follow again with after_cursor set to the cursor of the last message you received/);
    // Connect's handlers cannot end a stalled HTTP/1.1 response cleanly: its connection is closed.
    await new Promise<void>((resolve) => {
      json.once("close", () => resolve());
      json.resume();
    });
    for (const s of lanes) s.destroy();
    for (const g of grpc) g.session.destroy();
  });

  it("a late follower of a finished step that stops reading is ended after the stall timeout too", async () => {
    const step = await stack.client.submit(echo({ text: "", tokenCount: 1_000_000 }));
    await stack.client.wait(step.id);
    const before = stack.server.hub.stats().stalled;
    const socket = await stalledLane(step.id);
    await eventually(async () => stack.server.hub.stats().stalled, (n) => n === before + 1);
    const { messages, end } = framesOf(await readChunkedBody(socket));
    expect(messages.length).toBeGreaterThan(0);
    expect(end?.error?.code).toBe("resource_exhausted");
    socket.destroy();
  });
});
