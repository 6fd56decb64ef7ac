/**
 * Issue 15, items 3 and 7: every job belongs to the tenant of the key that
 * submitted it, and a key of another tenant cannot read, list, follow,
 * watch, cancel, retry or purge it, nor squat its idempotency keys. Another
 * tenant's job answers exactly as a job that does not exist. Admin keys see
 * every tenant. Real server (--auth required), real worker, real clients on
 * every protocol, the output lane's streams included.
 */
import { type DescMethod, type DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { createStepqClient, type StepqClient } from "../clients/node/client.js";
import { JobService } from "../gen/stepq/v1/job_service_pb.js";
import { StepState } from "../gen/stepq/v1/step_pb.js";
import { StepService } from "../gen/stepq/v1/step_service_pb.js";
import { createApiKey } from "../queue/api-keys.js";
import { connect } from "./helpers/redis.js";
import { runStepq } from "./helpers/cli.js";
import { echo, useStack } from "./helpers/stack.js";

const stack = await useStack({ auth: "required" });
void (await stack.worker({ concurrency: 4 })).runForever();
const base = stack.server.url;
const redis = await connect(stack.redis.url);
const keys = stack.server.queue.keys;

const secretOf = async (name: string, tenant: string, roles: string[]) => (await createApiKey(redis, keys, { name, tenant, roles })).secret;
const alice = { secret: await secretOf("alice", "acme", ["submit"]) };
const bob = { secret: await secretOf("bob", "globex", ["submit"]) };
const bobReader = await secretOf("bob dashboard", "globex", ["read"]);
const admin = await secretOf("operator", "ops", ["admin"]);
const client = (secret: string): StepqClient => createStepqClient({ baseUrl: base, apiKey: secret });
const aliceClient = client(alice.secret);
const bobClient = client(bob.secret);

const TRANSPORTS: Record<string, () => Transport> = {
  "connect-json": () => createConnectTransport({ baseUrl: base, httpVersion: "1.1", useBinaryFormat: false }),
  "connect-proto": () => createConnectTransport({ baseUrl: base, httpVersion: "1.1", useBinaryFormat: true }),
  "connect-proto-h2": () => createConnectTransport({ baseUrl: base, httpVersion: "2", useBinaryFormat: true }),
  grpc: () => createGrpcTransport({ baseUrl: base }),
  "grpc-web": () => createGrpcWebTransport({ baseUrl: base, httpVersion: "1.1" }),
};

/** Calls `method` with `req` as `secret`; a stream is read to its end (or 3 s). Returns the error, or the messages. */
async function call(protocol: string, service: DescService, method: DescMethod, req: object, secret: string): Promise<{ error?: ConnectError; messages: unknown[] }> {
  const c = createClient(service, (TRANSPORTS[protocol] as () => Transport)()) as unknown as Record<string, (r: unknown, o: unknown) => unknown>;
  const options = { signal: AbortSignal.timeout(3000), headers: { authorization: `Bearer ${secret}` } };
  const messages: unknown[] = [];
  try {
    const fn = c[method.localName] as (r: unknown, o: unknown) => unknown;
    if (method.methodKind === "unary") messages.push(await (fn(req, options) as Promise<unknown>));
    else for await (const m of fn(req, options) as AsyncIterable<unknown>) messages.push(m);
    return { messages };
  } catch (e) {
    return { error: ConnectError.from(e), messages };
  }
}

/** What each per-job RPC is asked, for job `jobId` (step 0). */
function requestsFor(jobId: string): [DescService, DescMethod, object][] {
  const stepId = `${jobId}.0`;
  return [
    [JobService, JobService.method.getJob, { jobId }],
    [JobService, JobService.method.watchJob, { jobId }],
    [JobService, JobService.method.streamJobOutput, { jobId }],
    [JobService, JobService.method.cancelJob, { jobId, reason: "not mine" }],
    [StepService, StepService.method.getStep, { stepId }],
    [StepService, StepService.method.streamTokens, { stepId }],
    [StepService, StepService.method.streamNarration, { stepId }],
    [StepService, StepService.method.cancelStep, { stepId, reason: "not mine" }],
    [StepService, StepService.method.retryStep, { stepId }],
    [StepService, StepService.method.purgeStep, { stepId }],
  ];
}

/** A job id of the same form that no job has. */
const missingId = (jobId: string) => `${"zzzzzzzz"}${jobId.slice(8)}`;

describe("tenants", () => {
  it("another tenant's job answers every read, stream and action on every protocol exactly as a job that does not exist", async () => {
    const secret = "prompt only acme may read";
    const done = await aliceClient.submit(echo({ text: secret, tokenCount: 3 }), { labels: { customer: "acme-vip" }, idempotencyKey: "acme-1" });
    expect((await aliceClient.wait(done.id)).state).toBe(StepState.SUCCEEDED);
    const failed = await aliceClient.submit(echo({ text: secret, failMessage: "boom", failPermanently: true }));
    expect((await aliceClient.wait(failed.id)).state).toBe(StepState.FAILED); // a dead letter: retry and purge apply
    const running = await aliceClient.submit(echo({ text: secret, delayMs: 60_000 }));

    for (const jobId of [done.jobId, failed.jobId, running.jobId]) {
      for (const protocol of Object.keys(TRANSPORTS)) {
        for (const [service, method, req] of requestsFor(jobId)) {
          const what = `${protocol} ${service.name}.${method.name} on ${jobId}`;
          const theirs = await call(protocol, service, method, req, bob.secret);
          const missing = JSON.parse(JSON.stringify(req).replaceAll(jobId, missingId(jobId))) as object;
          const nobodys = await call(protocol, service, method, missing, bob.secret);
          expect(theirs.error?.code, what).toBe(Code.NotFound);
          expect(theirs.messages, what).toEqual([]);
          expect(theirs.error?.rawMessage.replaceAll(jobId, missingId(jobId)), what).toBe(nobodys.error?.rawMessage);
          expect(theirs.error?.rawMessage, what).not.toContain(secret);
        }
      }
    }
    // Nothing bob tried changed alice's jobs: the running one still runs, the dead letter is still there.
    expect((await aliceClient.get(running.id)).state).toBe(StepState.RUNNING);
    expect((await aliceClient.get(failed.id)).state).toBe(StepState.FAILED);
    // And alice herself can do all of it (so the refusals above are about the tenant).
    const own = await call("connect-proto", JobService, JobService.method.streamJobOutput, { jobId: done.jobId }, alice.secret);
    expect(own.error).toBeUndefined();
    expect(own.messages.length).toBeGreaterThan(3);
    expect((await call("grpc", StepService, StepService.method.getStep, { stepId: done.id }, alice.secret)).error).toBeUndefined();
    expect((await call("connect-json", StepService, StepService.method.cancelStep, { stepId: running.id }, alice.secret)).error).toBeUndefined();
    expect((await call("grpc-web", StepService, StepService.method.purgeStep, { stepId: failed.id }, alice.secret)).error).toBeUndefined();
  });

  it("lists show a tenant only its own jobs and steps; an admin key lists every tenant's", async () => {
    const a = await aliceClient.submit(echo({ text: "a" }));
    const b = await bobClient.submit(echo({ text: "b" }));
    await Promise.all([aliceClient.wait(a.id), bobClient.wait(b.id)]);
    const jobIds = async (secret: string) => {
      const r = await call("connect-json", JobService, JobService.method.listJobs, { pageSize: 200 }, secret);
      return (r.messages[0] as { jobs: { id: string }[] }).jobs.map((j) => j.id);
    };
    const stepJobIds = async (secret: string) => {
      const r = await call("grpc", StepService, StepService.method.listSteps, { pageSize: 500 }, secret);
      return (r.messages[0] as { steps: { jobId: string }[] }).steps.map((s) => s.jobId);
    };
    for (const list of [jobIds, stepJobIds]) {
      const bobs = await list(bobReader);
      expect(bobs).toContain(b.jobId);
      expect(bobs).not.toContain(a.jobId);
      const alices = await list(alice.secret);
      expect(alices).toContain(a.jobId);
      expect(alices).not.toContain(b.jobId);
      const all = await list(admin);
      expect(all).toEqual(expect.arrayContaining([a.jobId, b.jobId]));
    }
    // The admin reads and acts across tenants.
    expect((await call("connect-json", JobService, JobService.method.getJob, { jobId: a.jobId }, admin)).error).toBeUndefined();
  });

  it("WatchSteps sends a tenant only its own jobs' events, from cursor 0-0 on, and no worker events", async () => {
    // History first: events of both tenants, one- and many-step jobs (batch and single event entries).
    const a = await aliceClient.submit(echo({ text: "alice's", tokenCount: 2 }));
    const bJob = await bobClient.jobs.submitJob({
      steps: [
        { name: "first", operation: echo({ text: "one" }) },
        { name: "second", operation: echo({ text: "two" }), dependsOn: ["first"] },
      ],
    });
    const b = await bobClient.submit(echo({ text: "bob's" }));
    await Promise.all([aliceClient.wait(a.id), bobClient.wait(b.id), bobClient.wait(`${bJob.job!.id}.1`)]);
    const bobsJobs = new Set([b.jobId, bJob.job!.id]);

    const seen = await call("connect-proto", StepService, StepService.method.watchSteps, { afterCursor: "0-0" }, bobReader);
    expect(seen.error?.code).toBe(Code.Canceled); // the watch was open until the client's 3 s timeout
    const events = (seen.messages as { event: { jobId: string; type: number } }[]).map((m) => m.event);
    expect(events.length).toBeGreaterThanOrEqual(10);
    const globex = (await stack.server.queue.tenantOf(b.jobId)) as number;
    expect(globex).toBeGreaterThan(0);
    for (const e of events) expect(await stack.server.queue.tenantOf(e.jobId), `event of type ${e.type} of job "${e.jobId}"`).toBe(globex);
    for (const id of bobsJobs) expect(events.map((e) => e.jobId)).toContain(id);
    expect(events.map((e) => e.jobId)).not.toContain(a.jobId);

    // The admin's watch has both tenants' and the worker's events.
    const all = await call("connect-proto", StepService, StepService.method.watchSteps, { afterCursor: "0-0" }, admin);
    const ids = new Set((all.messages as { event: { jobId: string } }[]).map((m) => m.event.jobId));
    expect(ids).toContain(a.jobId);
    expect(ids).toContain(b.jobId);
    expect(ids).toContain(""); // WORKER_JOINED
  });

  it("idempotency keys are per tenant: one tenant cannot squat another's", async () => {
    const squat = await bobClient.steps.submitStep({ operation: echo({ text: "squatting" }), idempotencyKey: "order-1001" });
    expect(squat.deduplicated).toBe(false);
    const real = await aliceClient.steps.submitStep({ operation: echo({ text: "the real order" }), idempotencyKey: "order-1001" });
    expect(real.deduplicated).toBe(false);
    expect(real.step!.jobId).not.toBe(squat.step!.jobId);
    const resent = await aliceClient.steps.submitStep({ operation: echo({ text: "the real order" }), idempotencyKey: "order-1001" });
    expect([resent.deduplicated, resent.step!.jobId]).toEqual([true, real.step!.jobId]);
    const other = await bobClient.steps.submitStep({ operation: echo({ text: "different" }), idempotencyKey: "order-1001" }).catch((e: unknown) => ConnectError.from(e));
    expect((other as ConnectError).code).toBe(Code.AlreadyExists);
  });
});

describe("the CLI against a server that requires keys", () => {
  const stepq = (args: string[], env: Record<string, string> = {}) => runStepq([...args, "--server", base], env);

  it("signs in with --api-key or STEPQ_API_KEY, sees only its tenant's steps, and says what is missing without a key", async () => {
    const submitted = await stepq(["submit", "echo", "--text", "cli", "--api-key", alice.secret]);
    expect(submitted.code, submitted.stderr).toBe(0);
    const id = submitted.stdout.trim();
    expect((await stepq(["get", id], { STEPQ_API_KEY: alice.secret })).stdout).toMatch(/route\s+echo/);
    expect((await stepq(["get", id, "--api-key", bob.secret])).code).toBe(4); // another tenant's step does not exist for bob
    const anonymous = await stepq(["get", id]);
    expect(anonymous.code).toBe(5);
    expect(anonymous.stderr).toMatch(/\(give an API key with --api-key or STEPQ_API_KEY\)$/m);
    const stats = await stepq(["stats", "--json", "--api-key", bobReader]);
    expect(stats.code, stats.stderr).toBe(0);
    expect(JSON.parse(stats.stdout)).toHaveProperty("bucketSeconds", 10);
  });
});
