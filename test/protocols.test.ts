import { describe, expect, it } from "vitest";
import { createStepqClient } from "../clients/node/client.js";
import { StepState } from "../gen/stepq/v1/step_pb.js";
import { echo, useStack } from "./helpers/stack.js";

const stack = await useStack();
const worker = await stack.worker({ concurrency: 4 });
void worker.runForever();

const variants = [
  { protocol: "connect", httpVersion: "1.1" },
  { protocol: "connect", httpVersion: "2" },
  { protocol: "grpc", httpVersion: "2" },
  { protocol: "grpc-web", httpVersion: "1.1" },
  { protocol: "grpc-web", httpVersion: "2" },
] as const;

describe("one port speaks every protocol", () => {
  for (const v of variants) {
    it(`${v.protocol} over HTTP/${v.httpVersion}: unary calls, a server stream and an error code`, async () => {
      const client = createStepqClient({ baseUrl: stack.server.url, ...v });
      const step = await client.submit(echo({ text: `via ${v.protocol}`, tokenCount: 3 }));
      const tokens: string[] = [];
      for await (const e of client.follow(step.id)) if (e.type === "tokens") tokens.push(...e.tokens.map((t) => t.text));
      expect(tokens.join("")).toBe(`via ${v.protocol} via `);
      expect((await client.get(step.id)).state).toBe(StepState.SUCCEEDED);
      await expect(client.get("0000zzzzabcdabcd.0")).rejects.toMatchObject({ code: 5 });
    });
  }
});
