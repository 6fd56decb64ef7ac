/**
 * An HTTP/1.1 request whose body is not read to the end: answered early
 * (declared larger than --max-request-bytes), or stopped by its handler
 * (a streaming RPC whose first envelope claims 4 GiB). The client, still
 * sending, must read the answer (not fail its write with EPIPE), and a
 * kept-alive connection must serve the next request. The fuzz run found
 * both: the parser stayed paused mid-body, the next request on the
 * connection waited, and was reset when the connection was closed 5 s later.
 */
import * as http from "node:http";
import { afterAll, describe, expect, it } from "vitest";
import { useStack } from "./helpers/stack.js";

const stack = await useStack({ maxRequestBytes: 1024 * 1024 });
const url = new URL(stack.server.url);
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
afterAll(() => agent.destroy());

interface Answer {
  status: number;
  body: string;
  /** The request went on a connection an earlier request used. */
  reused: boolean;
  /** The answer said the connection closes after it. */
  closes: boolean;
}

function send(path: string, headers: http.OutgoingHttpHeaders, body: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ hostname: url.hostname, port: url.port, path, method: "POST", headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString("latin1"),
          reused: req.reusedSocket,
          closes: res.headers.connection === "close",
        }),
      );
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** A Connect streaming request whose first envelope claims 4 GiB, padded to `bytes`. */
function hugeEnvelope(bytes: number): Buffer {
  const b = Buffer.alloc(bytes, 0x61);
  b[0] = 0;
  b.writeUInt32BE(0xffffffff, 1);
  return b;
}

const getJob = () =>
  send("/stepq.v1.JobService/GetJob", { "content-type": "application/json" }, Buffer.from(JSON.stringify({ jobId: "0000000000000000" })));

describe("a body the server does not read to the end, on a kept-alive HTTP/1.1 connection", () => {
  it.each([142_101, 900_000])("a stream whose first envelope claims 4 GiB (%i bytes sent): refused, then the next request on the connection is answered", async (bytes) => {
    const stream = await send(
      "/stepq.v1.JobService/WatchJob",
      { "content-type": "application/connect+proto", "connect-protocol-version": "1" },
      hugeEnvelope(bytes),
    );
    expect(stream.status).toBe(200);
    expect(stream.body).toMatch(/"code":"resource_exhausted".*4294967295 bytes/);
    const next = await getJob();
    expect(next.reused).toBe(true);
    expect(next.status).toBe(404);
  });

  it("a body declared over --max-request-bytes is answered while still being sent, then the connection serves the next request", async () => {
    const big = await send("/stepq.v1.StepService/SubmitStep", { "content-type": "application/json" }, Buffer.alloc(3 * 1024 * 1024, 0x20));
    expect(big.status).toBe(429);
    expect(big.body).toMatch(/over this server's limit of 1048576 bytes \(--max-request-bytes\)/);
    const next = await getJob();
    expect(next.reused).toBe(true);
    expect(next.status).toBe(404);
  });

  it("with Connection: close, the client still sending reads the answer, and then the connection closes", async () => {
    const big = await send(
      "/stepq.v1.StepService/SubmitStep",
      { "content-type": "application/json", connection: "close" },
      Buffer.alloc(3 * 1024 * 1024, 0x20),
    );
    expect(big.status).toBe(429);
    const next = await getJob();
    expect(next.reused).toBe(false);
    expect(next.status).toBe(404);
  });
});

describe("a kept-alive connection serving many requests answered at once", () => {
  // /livez is answered before its (empty) body has ended: each such answer used to leave a close listener on the socket.
  it("leaves no listener behind per request (no MaxListenersExceededWarning after 40 GETs of /livez on one socket)", async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on("warning", onWarning);
    const sockets = new Set<unknown>();
    try {
      for (let i = 0; i < 40; i++) {
        await new Promise<void>((resolve, reject) => {
          const req = http.get({ hostname: url.hostname, port: url.port, path: "/livez", agent }, (res) => {
            sockets.add(res.socket);
            res.resume();
            res.on("end", () => resolve());
          });
          req.on("error", reject);
        });
      }
      // Warnings are emitted on the next tick.
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off("warning", onWarning);
    }
    expect(sockets.size).toBe(1);
    expect(warnings.filter((w) => w.startsWith("MaxListenersExceededWarning"))).toEqual([]);
  });
});
