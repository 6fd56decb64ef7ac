/**
 * Issue 19, item 3: a step no live worker could serve. With
 * --unserved-routes reject the submit fails at once, naming the route and
 * what the live workers serve (from the worker registry); by default (wait)
 * it is queued until a worker for its route comes.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, describe, expect, it } from "vitest";
import { createStepqClient } from "../clients/node/client.js";
import { StepState } from "../gen/stepq/v1/step_pb.js";
import { buildServer } from "../server/main.js";
import { echo, quiet, useStack } from "./helpers/stack.js";

const stack = await useStack(); // --unserved-routes wait (the default)
const strict = await buildServer({ redisUrl: stack.redis.url, port: 0, logger: quiet, unservedRoutes: "reject" });
afterAll(() => strict.close());
const client = createStepqClient({ baseUrl: strict.url });
const nobody = { kind: { case: "infer" as const, value: { model: "nobody", prompt: "x" } } };

const refusal = async (p: Promise<unknown>) => {
  const err = await p.catch((e: unknown) => ConnectError.from(e));
  expect(err).toBeInstanceOf(ConnectError);
  expect((err as ConnectError).code).toBe(Code.FailedPrecondition);
  return (err as ConnectError).rawMessage;
};

describe("--unserved-routes", () => {
  it("reject: a submit to a route no live worker serves fails, naming it and what is served", async () => {
    const worker = await stack.worker();
    void worker.runForever();
    expect((await client.wait((await client.submit(echo({ text: "served" }))).id)).state).toBe(StepState.SUCCEEDED);
    expect(await refusal(client.submit(nobody))).toBe(
      'operation: no live worker serves route "infer:nobody" (the live workers serve: echo); start a worker for it, or use a server with --unserved-routes wait, where steps wait for one',
    );
    expect(await refusal(client.steps.submitSteps({ requests: [{ operation: echo() }, { operation: nobody }] }))).toMatch(/^requests\[1\]\.operation: no live worker serves route "infer:nobody"/);
    expect(await refusal(client.jobs.submitJob({ steps: [{ name: "a", operation: echo() }, { name: "b", operation: nobody, dependsOn: ["a"] }] }))).toMatch(
      /^steps: no live worker serves route "infer:nobody"/,
    );
    // Once the last echo worker stops (it leaves the registry), echo is unserved too, within a second.
    await worker.stop(200);
    await expect.poll(() => refusal(client.submit(echo())), { timeout: 5000 }).toMatch(/the live workers serve: none: no worker is alive/);
  });

  it("wait (the default): the step is queued until a worker serves its route", async () => {
    const step = await stack.client.submit(nobody);
    expect((await stack.client.get(step.id)).state).toBe(StepState.QUEUED);
  });
});
