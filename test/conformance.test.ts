/**
 * Issue 17, item 4: the contract's golden cases. The corpus is held to the
 * proto schema (each request and golden parses strictly as its method's
 * messages, every RPC of the public services has cases), and `stepq
 * conformance --url` runs it (and the stream rules) against real servers:
 * everything conforms with an echo worker; the cases needing one are skipped
 * without; a wrong golden fails, naming the case and the field; an admin key
 * opens a server that requires keys.
 */
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type DescMethod, fromJson, type JsonValue } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { corpusDir, loadCorpus } from "../clients/conformance/corpus.js";
import { JobService } from "../gen/stepq/v1/job_service_pb.js";
import { QueueService } from "../gen/stepq/v1/queue_service_pb.js";
import { StepService } from "../gen/stepq/v1/step_service_pb.js";
import { TenantService } from "../gen/stepq/v1/tenant_service_pb.js";
import { createApiKey } from "../queue/api-keys.js";
import { buildServer } from "../server/main.js";
import { runStepq } from "./helpers/cli.js";
import { connect } from "./helpers/redis.js";
import { quiet, useStack } from "./helpers/stack.js";

const SERVICES = [StepService, JobService, QueueService, TenantService];

/** `value` without the placeholders ("<...>", "${...}"), which stand for values of the right type. */
function withoutPlaceholders(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutPlaceholders);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, v]) => !(typeof v === "string" && (/^<[a-z-]+>$/.test(v) || /^\$\{[^}]+\}$/.test(v))))
        .map(([k, v]) => [k, withoutPlaceholders(v)]),
    );
  }
  return value;
}

describe("the corpus", () => {
  const files = loadCorpus();

  it("holds to the schema: every request and golden parses strictly as its method's messages", () => {
    for (const file of files) {
      const service = SERVICES.find((s) => s.typeName === file.service);
      expect(service, file.file).toBeDefined();
      for (const c of file.cases) {
        const method = service!.methods.find((m) => m.name === c.method) as DescMethod;
        expect(method, `${file.file}: ${c.name}`).toBeDefined();
        const parse = (schema: DescMethod["input"], v: unknown) => fromJson(schema, withoutPlaceholders(v) as JsonValue, { ignoreUnknownFields: false });
        expect(() => parse(method.input, c.request), `${c.name} request`).not.toThrow();
        expect([c.response, c.error, c.stream].filter((x) => x !== undefined), `${c.name}: one of response, error, stream`).toHaveLength(1);
        if (c.response) expect(() => parse(method.output, c.response), `${c.name} response`).not.toThrow();
        for (const m of [c.stream?.first, c.stream?.last]) if (m) expect(() => parse(method.output, m), `${c.name} stream`).not.toThrow();
        if (c.error) expect(c.error.code).toMatch(/^[a-z_]+$/);
      }
    }
  });

  it("has cases for every RPC of StepService, JobService and QueueService (WatchSteps: the stream rules)", () => {
    const covered = new Set(files.flatMap((f) => f.cases.map((c) => `${f.service}.${c.method}`)));
    const rpcs = [StepService, JobService, QueueService].flatMap((s) => s.methods.map((m) => `${s.typeName}.${m.name}`));
    expect(rpcs.filter((r) => !covered.has(r))).toEqual(["stepq.v1.StepService.WatchSteps"]);
  });
});

describe("stepq conformance", () => {
  it("finds that a server with an echo worker conforms, every RPC and every stream rule", async () => {
    const stack = await useStack();
    void (await stack.worker({ concurrency: 4 })).runForever();
    const res = await runStepq(["conformance", "--url", stack.server.url], {});
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^✓ StepService\.SubmitStep {2}\(\d+ cases\)$/m);
    expect(res.stdout).toMatch(/^✓ stream rules {2}\(5 cases\)$/m);
    expect(res.stdout.trim().split("\n").at(-1)).toMatch(/^20 conform, 0 do not, 0 skipped$/);

    // A wrong golden fails, naming the case and what differs.
    const dir = mkdtempSync(join(tmpdir(), "stepq-corpus-"));
    cpSync(corpusDir(), dir, { recursive: true });
    const path = join(dir, "queue-service.json");
    writeFileSync(path, readFileSync(path, "utf8").replace('"bucketSeconds": 10', '"bucketSeconds": 11'));
    const wrong = await runStepq(["conformance", "--url", stack.server.url, "--corpus", dir], {});
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).toMatch(/^✗ QueueService\.GetQueueStats {2}\(2 cases\)\n {4}✗ queue-stats: \$\.bucketSeconds: expected 11, got 10$/m);
    expect(wrong.stdout.trim().split("\n").at(-1)).toBe("19 conform, 1 do not, 0 skipped");
  }, 60_000);

  it("skips what needs an echo worker when none serves, and says why", async () => {
    const stack = await useStack();
    const res = await runStepq(["conformance", "--url", stack.server.url, "--json"], {});
    expect(res.code, res.stdout).toBe(0);
    const report = JSON.parse(res.stdout) as { rpcs: { rpc: string; status: string; cases: { status: string; detail: string[] }[] }[]; failed: number };
    expect(report.failed).toBe(0);
    const tokens = report.rpcs.find((r) => r.rpc === "StepService.StreamTokens");
    expect(tokens).toMatchObject({ status: "skip", cases: [{ status: "skip", detail: ["no live worker serves the echo route"] }] });
    expect(report.rpcs.find((r) => r.rpc === "StepService.SubmitStep")?.status).toBe("pass");
  }, 60_000);

  it("runs every case on a server that requires keys, given an admin key", async () => {
    const stack = await useStack();
    const guarded = await buildServer({ redisUrl: stack.redis.url, port: 0, logger: quiet, auth: "required" });
    try {
      void (await stack.worker({ concurrency: 4 })).runForever();
      const redis = await connect(stack.redis.url);
      const admin = (await createApiKey(redis, guarded.queue.keys, { name: "ci", tenant: "ops", roles: ["admin"] })).secret;
      redis.disconnect();
      const res = await runStepq(["conformance", "--url", guarded.url, "--api-key", admin], {});
      expect(res.code, res.stdout).toBe(0);
      expect(res.stdout.trim().split("\n").at(-1)).toBe("20 conform, 0 do not, 0 skipped");
    } finally {
      await guarded.close();
    }
  }, 60_000);
});
