/**
 * The server-wide budget for request bytes in flight: concurrent large
 * requests are read and handled one after another instead of all at once,
 * and one that waits too long for room gets RESOURCE_EXHAUSTED in its own
 * protocol.
 */
import { request } from "node:http";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { createStepqClient } from "../clients/node/client.js";
import { echo, eventually, useStack } from "./helpers/stack.js";

const KIB = 1024;
const stack = await useStack({ maxInflightRequestBytes: 1024 * KIB, inflightWaitMs: 1500 });
const { port } = stack.server;

/** A SubmitSteps JSON body of about `kib` KiB. */
function bigSubmit(kib: number): Buffer {
  const per = 50 * KIB;
  const n = Math.max(1, Math.round(kib / 50));
  return Buffer.from(JSON.stringify({ requests: Array.from({ length: n }, () => ({ operation: { echo: { text: "x".repeat(per) } } })) }));
}

/** POSTs `body` as JSON, sending only its first `sendFirst` bytes until `rest()` is called. */
function post(body: Buffer, sendFirst = body.length, headers: Record<string, string> = {}) {
  let finish!: () => void;
  const reply = new Promise<{ status: number; body: string; at: number; connection: string | undefined }>((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, method: "POST", path: "/stepq.v1.StepService/SubmitSteps", headers: { "content-type": "application/json", "content-length": body.length, ...headers } },
      (res) => {
        let text = "";
        res.on("data", (d) => (text += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text, at: performance.now(), connection: res.headers.connection }));
      },
    );
    req.on("error", reject);
    req.write(body.subarray(0, sendFirst));
    finish = () => req.end(body.subarray(sendFirst));
    if (sendFirst === body.length) req.end();
  });
  return { reply, rest: () => finish() };
}

describe("request bytes in flight", () => {
  it("a large request that does not fit waits, unread, until the one holding the budget is answered", async () => {
    const a = post(bigSubmit(900), 400 * KIB); // holds its 900 KiB, its body half sent
    await eventually(async () => stack.server.requestBudget.held, (n) => n >= 900 * KIB);
    const b = post(bigSubmit(900));
    await eventually(async () => stack.server.requestBudget.waiting, (n) => n === 1);
    a.rest();
    const [ra, rb] = await Promise.all([a.reply, b.reply]);
    expect(ra.status).toBe(200);
    expect(rb.status).toBe(200);
    expect(rb.at).toBeGreaterThan(ra.at);
    expect(stack.server.requestBudget.held).toBe(0);
  });

  it("a request that waits past --inflight-wait gets RESOURCE_EXHAUSTED naming the budget, over Connect JSON and gRPC", async () => {
    const a = post(bigSubmit(900), 100 * KIB);
    await eventually(async () => stack.server.requestBudget.held, (n) => n >= 900 * KIB);

    const b = await post(bigSubmit(900)).reply;
    expect(b.status).toBe(429);
    // Its body was never read: the connection closes rather than go back to the client's pool half-read.
    expect(b.connection).toBe("close");
    const err = JSON.parse(b.body) as { code: string; message: string };
    expect(err.code).toBe("resource_exhausted");
    expect(err.message).toMatch(/^the server is busy receiving \d+ bytes of other requests, its limit for requests in flight \(--max-inflight-request-bytes 1048576\), and this request waited 1500 ms for room; retry shortly/);

    const grpc = createStepqClient({ baseUrl: stack.server.url, protocol: "grpc" });
    const failure = await grpc.steps
      .submitSteps({ requests: Array.from({ length: 18 }, () => ({ operation: echo({ text: "y".repeat(50 * KIB) }) })) })
      .then(() => undefined, (e: unknown) => ConnectError.from(e));
    expect(failure?.code).toBe(Code.ResourceExhausted);
    expect(failure?.rawMessage).toMatch(/--max-inflight-request-bytes 1048576/);

    a.rest();
    expect((await a.reply).status).toBe(200);
    await eventually(async () => stack.server.requestBudget.held, (n) => n === 0);
  });

  it("a request whose deadline comes before --inflight-wait gets DEADLINE_EXCEEDED at its deadline; one whose client leaves stops waiting", async () => {
    const a = post(bigSubmit(900), 100 * KIB);
    await eventually(async () => stack.server.requestBudget.held, (n) => n >= 900 * KIB);
    const started = performance.now();
    const b = await post(bigSubmit(900), undefined, { "connect-timeout-ms": "200" }).reply;
    const waited = performance.now() - started;
    const err = JSON.parse(b.body) as { code: string; message: string };
    expect(err.code).toBe("deadline_exceeded");
    expect(err.message).toMatch(/^the request's deadline passed while it waited for room among requests in flight/);
    // At its deadline, not after the server's 1500 ms wait.
    expect(waited).toBeGreaterThanOrEqual(190);
    expect(waited).toBeLessThan(1200);

    // gRPC's deadline header too.
    const grpc = await post(bigSubmit(900), undefined, { "content-type": "application/json", "grpc-timeout": "150m" }).reply;
    expect(JSON.parse(grpc.body).code).toBe("deadline_exceeded");

    // A client that gives up: its place in line is freed at once.
    const c = request({ host: "127.0.0.1", port, method: "POST", path: "/stepq.v1.StepService/SubmitSteps", headers: { "content-type": "application/json", "content-length": 900 * KIB } });
    c.on("error", () => {});
    c.write(bigSubmit(900).subarray(0, 64 * KIB));
    await eventually(async () => stack.server.requestBudget.waiting, (n) => n === 1);
    c.destroy();
    await eventually(async () => stack.server.requestBudget.waiting, (n) => n === 0, 1000);

    a.rest();
    expect((await a.reply).status).toBe(200);
    await eventually(async () => stack.server.requestBudget.held, (n) => n === 0);
  });

  it("small requests go through afterwards, on connections the refused ones did not leave half-read", async () => {
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => stack.client.submit(echo({ text: `small ${i}` }))));
    expect(results).toHaveLength(20);
    expect(stack.server.requestBudget.held).toBe(0);
  });
});
