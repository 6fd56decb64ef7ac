/**
 * Server memory with followers that never read (issue 13, item 6): a
 * server and a worker as child processes over a private Redis, one echo
 * step streaming N tokens, F followers that send their request and then
 * never read, and one follower that reads everything. Prints the server's
 * RSS before, at its peak, once the step ended, and after the stalled
 * followers hung up, plus Redis's used_memory peak.
 *
 *   node --import tsx bench/slow-readers.ts [tokens=1000000] [followers=50] [protocol=lane|grpc|reading] [tokenBytes=8]
 *
 * `lane`: HTTP/1.1 Connect binary requests on raw sockets (what the Node
 * client sends, served by server/output-lane.ts). `grpc`: gRPC over one
 * HTTP/2 connection per follower (served by Connect). `reading`: the
 * followers are Node clients that read everything (what a large output
 * costs when every follower reads it, and its end re-reads the job).
 * `tokenBytes` sets each token's size (a word of that many letters).
 */
import { readFileSync } from "node:fs";
import * as http2 from "node:http2";
import { connect as netConnect, type Socket } from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { createStepqClient } from "../clients/node/client.js";
import { EchoOperationSchema, OperationSchema } from "../gen/stepq/v1/operation_pb.js";
import { StreamTokensRequestSchema } from "../gen/stepq/v1/step_service_pb.js";
import { createRedis, waitReady } from "../queue/connection.js";
import { freePort, startRedisProcess } from "../runtime/redis-process.js";
import { startChild } from "./lib/child.js";

const USAGE =
  "usage: node --import tsx bench/slow-readers.ts [tokens=1000000] [followers=50] [protocol=lane|grpc|reading] [tokenBytes=8]";
const tokens = Number(process.argv[2] ?? 1_000_000);
const followers = Number(process.argv[3] ?? 50);
const protocol = (process.argv[4] ?? "lane") as "lane" | "grpc" | "reading";
const tokenBytes = Number(process.argv[5] ?? 8);
const counts = [tokens, followers, tokenBytes];
if (counts.some((n) => !Number.isSafeInteger(n) || n < 1) || !["lane", "grpc", "reading"].includes(protocol)) {
  process.stderr.write(`${USAGE}\n`);
  process.exit(process.argv.includes("--help") || process.argv.includes("-h") ? 0 : 2);
}

function rssMiB(pid: number | undefined): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

function envelope(bytes: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + bytes.length);
  out.writeUInt32BE(bytes.length, 1);
  out.set(bytes, 5);
  return out;
}

/** A follower that sends its request and never reads a byte of the answer. */
function stalledLane(port: number, stepId: string): Promise<Socket> {
  const body = envelope(toBinary(StreamTokensRequestSchema, create(StreamTokensRequestSchema, { stepId })));
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, "127.0.0.1", () => {
      socket.write(
        `POST /stepq.v1.StepService/StreamTokens HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/connect+proto\r\n` +
          `Content-Length: ${body.length}\r\n\r\n`,
      );
      socket.write(body);
      socket.pause();
      resolve(socket);
    });
    socket.on("error", reject);
  });
}

function stalledGrpc(port: number, stepId: string): http2.ClientHttp2Session {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on("error", () => {});
  const body = envelope(toBinary(StreamTokensRequestSchema, create(StreamTokensRequestSchema, { stepId })));
  const stream = session.request({ ":method": "POST", ":path": "/stepq.v1.StepService/StreamTokens", "content-type": "application/grpc", te: "trailers" });
  stream.on("error", () => {});
  stream.end(body);
  stream.pause();
  return session;
}

async function countTokens(c: ReturnType<typeof createStepqClient>, stepId: string): Promise<number> {
  let n = 0;
  for await (const e of c.follow(stepId)) if (e.type === "tokens") n += e.tokens.length;
  return n;
}

const redis = await startRedisProcess();
const admin = createRedis(redis.url, "command");
await waitReady(admin);
const port = await freePort();
// The step's output (tokens x tokenBytes) may pass the default output cap: this measures streams, not caps.
const outputCap = `${Math.max(4, Math.ceil((tokens * (tokenBytes + 2)) / 2 ** 20) + 1)}MiB`;
const server = startChild("server/main.ts", ["--redis-url", redis.url, "--port", String(port), "--max-output-bytes", outputCap, "--max-job-bytes", "4GiB"]);
await server.waitFor(/listening/);
const worker = startChild("worker/main.ts", ["--redis-url", redis.url]);
await worker.waitFor(/started|ready|claim/i, 30_000).catch(() => undefined);
const client = createStepqClient({ baseUrl: `http://127.0.0.1:${port}` });

let peakRss = 0;
let peakRedis = 0;
const sample = setInterval(() => {
  peakRss = Math.max(peakRss, rssMiB(server.pid));
  void admin.info("memory").then((s) => {
    peakRedis = Math.max(peakRedis, Number(/used_memory:(\d+)/.exec(s)?.[1] ?? 0) / 2 ** 20);
  });
}, 100);

// Warm up: one small step through the same path.
const warm = await client.submit(create(OperationSchema, { kind: { case: "echo", value: create(EchoOperationSchema, { text: "warm", tokenCount: 10 }) } }));
for await (const _ of client.follow(warm.id)) {
  /* drain */
}
await new Promise((r) => setTimeout(r, 1000));
const before = rssMiB(server.pid);

const started = Date.now();
const step = await client.submit(
  create(OperationSchema, { kind: { case: "echo", value: create(EchoOperationSchema, { text: tokenBytes > 8 ? "w".repeat(tokenBytes - 1) : "", tokenCount: tokens }) } }),
);
const stalled: (Socket | http2.ClientHttp2Session)[] = [];
const readers: Promise<number>[] = [];
for (let i = 0; i < followers; i++) {
  if (protocol === "reading") readers.push(countTokens(createStepqClient({ baseUrl: `http://127.0.0.1:${port}` }), step.id));
  else stalled.push(protocol === "lane" ? await stalledLane(port, step.id) : stalledGrpc(port, step.id));
}
const got = await countTokens(client, step.id);
await Promise.all(readers);
const readerDone = Date.now() - started;
const finished = await client.get(step.id);
const stepMs = Number(finished.finishedAt?.seconds ?? 0n) * 1000 + (finished.finishedAt?.nanos ?? 0) / 1e6 - (Number(finished.startedAt?.seconds ?? 0n) * 1000 + (finished.startedAt?.nanos ?? 0) / 1e6);
await new Promise((r) => setTimeout(r, 3000));
const afterEnd = rssMiB(server.pid);
for (const s of stalled) s.destroy();
await new Promise((r) => setTimeout(r, 3000));
const afterHangUp = rssMiB(server.pid);
clearInterval(sample);

console.log(
  JSON.stringify({
    protocol,
    tokens,
    followers,
    normalReaderTokens: got,
    normalReaderMs: readerDone,
    stepRunMs: Math.round(stepMs),
    serverRssMiB: { before: Math.round(before), peak: Math.round(peakRss), stepEnded: Math.round(afterEnd), afterHangUp: Math.round(afterHangUp) },
    redisUsedMemoryPeakMiB: Math.round(peakRedis),
  }),
);
await worker.stop();
await server.stop();
admin.disconnect();
await redis.kill("SIGKILL");
process.exit(0);
