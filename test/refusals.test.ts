/**
 * The answers Connect gives without a body (an unknown path, a content type
 * no protocol takes, a GET of an RPC that changes state) carry one that
 * says what exists or what to send: `curl -s` with a typo prints why.
 */
import { execFile } from "node:child_process";
import { connect as h2connect } from "node:http2";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { createStepqClient } from "../clients/node/client.js";
import { OperationSchema } from "../gen/stepq/v1/operation_pb.js";
import { echo, useStack } from "./helpers/stack.js";

const stack = await useStack();
const base = stack.server.url;
const run = promisify(execFile);

async function post(path: string, contentType: string, body = "{}") {
  const res = await fetch(`${base}${path}`, { method: "POST", headers: { "content-type": contentType }, body });
  return { status: res.status, headers: res.headers, body: (await res.json()) as { code: string; message: string } };
}

describe("answers that had no body", () => {
  it("a misspelt method is 404 unimplemented, naming the closest one; curl -s prints it", async () => {
    const r = await post("/stepq.v1.StepService/GetStpe", "application/json");
    expect(r.status).toBe(404);
    expect(r.body).toEqual({ code: "unimplemented", message: "no RPC at /stepq.v1.StepService/GetStpe; did you mean /stepq.v1.StepService/GetStep?" });
    const { stdout } = await run("curl", ["-s", "-H", "content-type: application/json", "-d", "{}", `${base}/stepq.v1.StepService/GetStpe`]);
    expect(JSON.parse(stdout)).toEqual(r.body);
  });

  it("an unknown method of a known service lists the service's methods", async () => {
    const r = await post("/stepq.v1.StepService/DeleteEverything", "application/json");
    expect(r.status).toBe(404);
    expect(r.body.code).toBe("unimplemented");
    expect(r.body.message).toMatch(/^stepq\.v1\.StepService has no method "DeleteEverything"; it has SubmitStep, SubmitSteps, GetStep, /);
  });

  it("a path that is no RPC says what the server serves", async () => {
    const res = await fetch(`${base}/nothing-here`); // "/" is the dashboard
    expect(res.status).toBe(404);
    const body = (await res.json()) as { code: string; message: string };
    expect(body.message).toMatch(/^no RPC at "\/nothing-here"; stepq serves POST \/<service>\/<method> for stepq\.v1\.StepService and stepq\.v1\.JobService .* and GET \/healthz$/);
  });

  it("a gRPC call of an unknown method gets UNIMPLEMENTED with the message in its status headers", async () => {
    const session = h2connect(base);
    try {
      const headers = await new Promise<Record<string, unknown>>((resolve, reject) => {
        const req = session.request({ ":method": "POST", ":path": "/stepq.v1.JobService/GetJobb", "content-type": "application/grpc", te: "trailers" });
        req.on("response", (h) => resolve(h as Record<string, unknown>));
        req.on("error", reject);
        req.end(Buffer.from([0, 0, 0, 0, 0]));
        req.resume();
      });
      expect(headers[":status"]).toBe(200);
      expect(headers["grpc-status"]).toBe("12");
      expect(decodeURIComponent(String(headers["grpc-message"]))).toBe("no RPC at /stepq.v1.JobService/GetJobb; did you mean /stepq.v1.JobService/GetJob?");
    } finally {
      session.close();
    }
  });

  it("a content type no protocol takes is 415, naming the ones that work", async () => {
    const r = await post("/stepq.v1.StepService/SubmitStep", "text/plain");
    expect(r.status).toBe(415);
    expect(r.body.code).toBe("invalid_argument");
    expect(r.body.message).toBe(
      'content-type "text/plain" is not accepted by stepq.v1.StepService/SubmitStep; send application/json or application/proto (Connect), ' +
        "application/grpc[+proto|+json] (gRPC), application/grpc-web[+proto|+json] (gRPC-Web)",
    );
    const stream = await post("/stepq.v1.StepService/StreamTokens", "application/json");
    expect(stream.status).toBe(415);
    expect(stream.body.message).toMatch(/StreamTokens; send application\/connect\+json or application\/connect\+proto \(Connect\)/);
  });

  it("SubmitStep by GET is 405, saying to POST and which RPCs take GET", async () => {
    const res = await fetch(`${base}/stepq.v1.StepService/SubmitStep?encoding=json&message=%7B%7D`);
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("POST");
    expect(await res.json()).toEqual({
      code: "unimplemented",
      message: "stepq.v1.StepService/SubmitStep takes POST only (it is not read-only); GET works for the read-only RPCs: GetStep, ListSteps, GetJob, ListJobs, ListKeys, ListTenants, GetQueueStats, ListLegacyUsage, ListWorkers, GetWebhook, ListWebhooks, ListDeliveries",
    });
  });

  it("an error about a huge field answers gRPC clients with a bounded message (it once overflowed the header block and reset the stream)", async () => {
    const grpc = createStepqClient({ baseUrl: base, protocol: "grpc" });
    const big = "q".repeat(170_000);
    const calls = [
      grpc.steps.submitStep({ operation: create(OperationSchema, { kind: { case: "infer", value: { model: big, prompt: "x" } } }) }),
      grpc.jobs.submitJob({ steps: [{ name: big, operation: echo({ text: "a" }) }] }),
      grpc.jobs.submitJob({ steps: [{ name: "a", operation: echo({ text: "a" }), dependsOn: [big] }] }),
      grpc.steps.submitStep({ operation: echo({ text: "a" }), labels: { [big]: "v" } }),
    ];
    // Settled up front: a call that fails while an earlier one is awaited must not be an unhandled rejection.
    const errors = calls.map((call) => call.then(() => undefined, (e: unknown) => ConnectError.from(e)));
    for (const pending of errors) {
      const err = await pending;
      expect(err?.code).toBe(Code.InvalidArgument);
      expect(err?.rawMessage.length).toBeLessThan(400);
      expect(err?.rawMessage).toContain("… (170000 characters)");
    }
  });
});
