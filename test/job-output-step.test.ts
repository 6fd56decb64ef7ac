/**
 * StreamJobOutput's step_id and its end on resume: with step_id only that
 * step's messages come, ending with its StepEnd; resumed after the end it
 * ends at once with no message (so a client that reconnects after the end,
 * as EventSource does, is not left waiting). Over the output lane (Connect
 * binary) and through Connect's own handler (gRPC), which share the code.
 */
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { JobService, type StreamJobOutputResponse } from "../gen/stepq/v1/job_service_pb.js";
import { echo, useStack } from "./helpers/stack.js";

const stack = await useStack();
void (await stack.worker()).runForever();
const transports = {
  "connect (output lane)": createConnectTransport({ baseUrl: stack.server.url, httpVersion: "1.1" }),
  grpc: createGrpcTransport({ baseUrl: stack.server.url }),
};

const { job } = await stack.client.jobs.submitJob({
  steps: [
    { name: "a", operation: echo({ text: "a", tokenCount: 3 }) },
    { name: "b", operation: echo({ text: "b", tokenCount: 2 }), dependsOn: ["a"] },
  ],
});
const jobId = job!.id;
for await (const _ of stack.client.jobs.watchJob({ jobId })); // until it ends

const read = async (client: ReturnType<typeof createClient<typeof JobService>>, stepId: string, afterCursor = "") => {
  const out: StreamJobOutputResponse["event"][] = [];
  for await (const m of client.streamJobOutput({ jobId, stepId, afterCursor }, { signal: AbortSignal.timeout(5000) })) out.push(m.event);
  return out;
};

describe.each(Object.entries(transports))("StreamJobOutput over %s", (_name, transport) => {
  const client = createClient(JobService, transport);

  it("with step_id yields only that step's messages and ends with its StepEnd", async () => {
    const events = await read(client, `${jobId}.0`);
    expect(events.every((e) => e.case !== undefined && "stepId" in e.value && e.value.stepId === `${jobId}.0`)).toBe(true);
    expect(events.filter((e) => e.case === "tokens").flatMap((e) => (e.case === "tokens" ? e.value.tokens.map((t) => t.text) : [])).join("")).toBe("a a a ");
    expect(events.at(-1)?.case).toBe("stepEnd");
  });

  it("resumed after the step's or the job's end, ends at once with no message", async () => {
    const step = await read(client, `${jobId}.0`);
    const stepEnd = step.at(-1)?.value?.cursor as string;
    expect(await read(client, `${jobId}.0`, stepEnd)).toEqual([]);
    const whole = await read(client, "");
    expect(whole.at(-1)?.case).toBe("jobEnd");
    expect(await read(client, "", whole.at(-1)?.value?.cursor as string)).toEqual([]);
    // After the first step's end the job still has the second step's output and its end.
    expect((await read(client, "", stepEnd)).map((e) => e.case)).toContain("jobEnd");
  });

  it("refuses a step of another job, naming step_id", async () => {
    const err = await read(client, "0000000000000000.0").catch((e: unknown) => ConnectError.from(e));
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.InvalidArgument);
    expect((err as ConnectError).rawMessage).toBe(`step_id: 0000000000000000.0 is not a step of job_id ${jobId}; give one of its steps, or leave step_id empty`);
  });
});
