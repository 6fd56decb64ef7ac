/**
 * One HTTP/2 connection carries every call of a gRPC or Connect client.
 * A reply as large as this server may send (a job record near
 * --max-job-bytes) that the client has not read yet must not refuse the
 * client's other calls on that connection: with Node's default session
 * memory (10 MB) one unread 12 MB GetJob had every new stream on the
 * connection reset with ENHANCE_YOUR_CALM (the fuzz run found it).
 */
import * as http2 from "node:http2";
import { afterAll, describe, expect, it } from "vitest";
import { useStack } from "./helpers/stack.js";

const stack = await useStack({ maxRequestBytes: 32 * 1024 * 1024 });

/** A unary Connect JSON call on `session`; `read` false leaves its reply unread. */
function call(session: http2.ClientHttp2Session, path: string, body: unknown, read = true) {
  const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/json" });
  const reply = new Promise<{ status: number; body: string; error?: string }>((resolve) => {
    let status = 0;
    const chunks: Buffer[] = [];
    stream.on("response", (h) => (status = Number(h[":status"])));
    if (read) stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => resolve({ status, body: Buffer.concat(chunks).toString() }));
    stream.on("error", (e) => resolve({ status, body: "", error: e.message }));
  });
  stream.end(JSON.stringify(body));
  return { stream, reply };
}

describe("a large reply not yet read on an HTTP/2 connection", () => {
  const session = http2.connect(stack.server.url);
  afterAll(() => session.destroy());

  it("leaves the connection's other calls answered", async () => {
    const big = "x".repeat(900_000);
    const steps = Array.from({ length: 14 }, (_, i) => ({ name: `s${i}`, operation: { echo: { text: big } } }));
    const submitted = await call(session, "/stepq.v1.JobService/SubmitJob", { steps }).reply;
    expect(submitted.status).toBe(200);
    const jobId = (JSON.parse(submitted.body) as { job: { id: string } }).job.id;

    const unread = call(session, "/stepq.v1.JobService/GetJob", { jobId }, false);
    // The server has the reply queued once its headers came.
    await new Promise((r) => unread.stream.once("response", r));
    const other = await call(session, "/stepq.v1.JobService/GetJob", { jobId: "0000000000000000" }).reply;
    expect(other.error).toBeUndefined();
    expect(other.status).toBe(404);
    expect(other.body).toMatch(/"code":"not_found"/);

    // And the large reply is whole once read.
    let bytes = 0;
    unread.stream.on("data", (c: Buffer) => (bytes += c.length));
    await unread.reply;
    expect(bytes).toBeGreaterThan(12 * 1024 * 1024);
  });
});
