/**
 * Issue 14, item 6: Redis Cluster routes a script by the keys it declares,
 * and may only run it where every key it touches lives. queue/script-keys.ts
 * declares, per script, the fixed keys it gets as KEYS and the kinds of keys
 * it derives at run time; every stepq key carries the queue's hash tag, so
 * all of them share KEYS[1]'s slot.
 *
 * Checked three ways: each script's header says what the table says; every
 * call goes through the table (no call site lists keys by hand); and with
 * MONITOR, every key each script call of a workload that runs every script
 * touched was one of its KEYS or of a kind it declares as derived.
 */
import { queuePosition } from "../queue/queue-position.js";
import { heartbeat, unregisterWorker } from "../queue/worker-registry.js";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { StepResultSchema } from "../gen/stepq/v1/step_pb.js";
import { createRedis, waitReady } from "../queue/connection.js";
import { buildLibrary, SCRIPT_NAMES, type ScriptName } from "../queue/function-library.js";
import { createKeys } from "../queue/keys.js";
import { oneStepJob } from "../queue/prepare-job.js";
import { createQueue } from "../queue/queue.js";
import { SCRIPT_KEYS } from "../queue/script-keys.js";
import { readStreamView } from "../queue/stream-view.js";
import { connect, useRedis } from "./helpers/redis.js";
import { echo } from "./helpers/stack.js";

const root = join(import.meta.dirname, "..");
const header = (name: string) => {
  const src = readFileSync(join(root, "queue/scripts", `${name}.lua`), "utf8");
  const end = src.indexOf("]]");
  return { head: src.slice(0, end), body: src.slice(end) };
};

describe("the keys each script declares", () => {
  it("every script's header lists the KEYS and derived keys of queue/script-keys.ts, and its body reads no other KEYS", () => {
    const files = readdirSync(join(root, "queue/scripts")).filter((f) => f.endsWith(".lua"));
    expect(files.map((f) => f.replace(/\.lua$/, "")).sort()).toEqual([...SCRIPT_NAMES].sort());
    for (const name of SCRIPT_NAMES) {
      const { head, body } = header(name);
      const listed = [...head.matchAll(/^KEYS\[(\d+)\] (\w+):/gm)].map((m) => [Number(m[1]), m[2]]);
      const spec = SCRIPT_KEYS[name];
      expect(listed, name).toEqual(spec.keys.map((k, i) => [i + 1, k]));
      for (const d of spec.derived) expect(head.replace(/\s+/g, " "), `${name} derives ${d}`).toContain(`(K.${d})`);
      for (const m of body.matchAll(/KEYS\[(\d+)\]/g)) expect(Number(m[1]), name).toBeLessThanOrEqual(spec.keys.length);
    }
  });

  it("no call site lists KEYS by hand: every script runs through queueScript, which takes them from the table", () => {
    for (const dir of ["queue", "server", "worker"]) {
      for (const file of readdirSync(join(root, dir)).filter((f) => f.endsWith(".ts"))) {
        const src = readFileSync(join(root, dir, file), "utf8");
        const direct = [...src.matchAll(/(?<!function )\brunScript\(/g)].length;
        const allowed = file === "queue-script.ts" ? 1 : 0;
        expect(direct, `${dir}/${file}`).toBe(allowed);
      }
    }
  });
});

/** A pattern matching every key of derived kind `name` of queue `keys`. */
function derivedPattern(keys: ReturnType<typeof createKeys>, name: string): RegExp {
  const sample = (keys as unknown as Record<string, (a: string) => string>)[name]?.("\u0000") as string;
  const [head, tail] = sample.split("\u0000") as [string, string];
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`^${esc(head)}[^:]+(?::[^:]+)?${esc(tail)}$`);
}

describe("the keys a workload touches", () => {
  it("each script call touches only its KEYS and the kinds of keys it declares as derived, all under the queue's hash tag", async () => {
    const redisProcess = await useRedis();
    const redis = await connect(redisProcess.url);
    const queue = createQueue({ redis, queue: "tagged", limits: { maxSubmitsPerSecond: 1000 } });
    const short = createQueue({ redis, queue: "tagged", limits: { retentionMs: 1 } });
    const monitor = createRedis(redisProcess.url, "subscriber", { name: "stepq-test-monitor" });
    await waitReady(monitor);
    const commands: { args: string[]; source: string }[] = [];
    const feed = await monitor.monitor();
    feed.on("monitor", (_time: string, args: string[], source: string) => commands.push({ args, source }));
    const result = (text: string) => toBinary(StepResultSchema, create(StepResultSchema, { text }));
    try {
      await queue.publishLimits();
      const job = await queue.submit(
        queue.prepare({
          idempotencyKey: "k1",
          steps: [
            { name: "a", operation: echo({ text: "one" }) },
            { name: "b", operation: echo({ text: "two" }), dependsOn: ["a"] },
            { name: "c", operation: echo({ text: "three" }), retry: { maxAttempts: 1 } },
          ],
        }),
      );
      await queue.submit(queue.prepare({ steps: [{ name: "e", operation: echo({ text: "late" }), queueTimeoutMs: 1 }, { name: "f", operation: echo({}), dependsOn: ["e"] }] }));
      await queue.submit(queue.prepare({ steps: [{ name: "s", operation: echo({ text: "scheduled" }) }], notBefore: Date.now() + 20 }));
      const one = await queue.submit(queue.prepare(oneStepJob({ operation: echo({ text: "one step" }), idempotencyKey: "k2" })));
      await new Promise((r) => setTimeout(r, 5)); // e's queue timeout passes
      const claimed = (await queue.claim({ workerId: "w", routes: ["echo"], leaseMs: 60_000, max: 10 })).steps;
      const a = claimed.find((s) => s.name === "a");
      const c = claimed.find((s) => s.name === "c");
      const m = claimed.find((s) => s.jobId === one.jobId);
      if (!a || !c || !m) throw new Error("claim did not return a, c and the one-step job");
      await queue.appendOutput(a, { firstSeq: 0, entries: [{ kind: "tokens", firstIndex: 0, texts: ["one"] }] });
      await queue.reportProgress(a, 0.5, "half");
      await queue.extendLeases([a, c], 60_000);
      await queue.settle({ workerId: "w", routes: ["echo"], leaseMs: 60_000, claimMax: 1, completions: [{ step: a, result: result("one"), trailing: { firstSeq: 1, entries: [] } }] });
      await queue.complete(m, result("m"));
      await queue.fail(c, { code: 2, message: "boom", retryable: false });
      await queue.retryStep(job.jobId, 2);
      await queue.openLog(job.jobId);
      await queue.cancel(job.jobId, undefined, "done testing");
      const dead = await queue.submit(queue.prepare(oneStepJob({ operation: echo({ text: "x" }), retry: { maxAttempts: 1 } })));
      const [d] = (await queue.claim({ workerId: "w", routes: ["echo"], leaseMs: 60_000, max: 1 })).steps;
      if (d) await queue.fail(d, { code: 2, message: "dead", retryable: false });
      await queue.purgeStep(dead.jobId, 0);
      const released = await queue.submit(queue.prepare(oneStepJob({ operation: echo({ text: "y" }) })));
      expect((await queuePosition(queue, released.jobId, 0)).position).toBe(1);
      const [r] = (await queue.claim({ workerId: "w", routes: ["echo"], leaseMs: 60_000, max: 1 })).steps;
      if (r) await queue.release("w", [r]);
      await readStreamView(queue, released.jobId);
      // Short leases and retention: recovery and purging have work.
      await short.submit(short.prepare(oneStepJob({ operation: echo({ text: "z" }) })));
      const leased = (await short.claim({ workerId: "w", routes: ["echo"], leaseMs: 1, max: 10 })).steps;
      if (leased.length === 0) throw new Error("nothing to lease briefly");
      await new Promise((res) => setTimeout(res, 30));
      await short.sweep();
      await new Promise((res) => setTimeout(res, 30));
      await queue.sweep();
      // The worker registry: a heartbeat with its claim routes, then leaving.
      const info = { id: "w", routes: ["echo"], concurrency: 1, stepsInHand: 0, version: "t", host: "h", pid: 1, startedAt: 0, heartbeatAt: 0 };
      await heartbeat(queue.redis, queue.keys, info, 60_000);
      await unregisterWorker(queue.redis, queue.keys, "w", ["echo"]);
    } finally {
      feed.disconnect();
      monitor.disconnect();
    }

    const lib = buildLibrary();
    const byFunction = new Map(Object.entries(lib.functions).map(([n, f]) => [f, n as ScriptName]));
    const keys = createKeys("tagged");
    const called = new Set<ScriptName>();
    const strays: string[] = [];
    let current: { name: ScriptName; keys: string[] } | undefined;
    for (const c of commands) {
      if (c.source !== "lua") {
        current = undefined;
        if (/^fcall$/i.test(c.args[0] as string)) {
          const name = byFunction.get(c.args[1] as string) as ScriptName;
          called.add(name);
          current = { name, keys: c.args.slice(3, 3 + Number(c.args[2])) };
          expect(current.keys, name).toEqual(SCRIPT_KEYS[name].keys.map((k) => (k === "job" ? current?.keys[0] : keys[k])));
        }
        continue;
      }
      if (!current) continue;
      const touched = (await redis.call("COMMAND", "GETKEYS", ...c.args).catch(() => [])) as string[];
      const derived = SCRIPT_KEYS[current.name].derived.map((d) => derivedPattern(keys, d));
      for (const k of touched) {
        if (!k.startsWith("stepq:{tagged}:")) strays.push(`${current.name}: ${k} (no hash tag)`);
        else if (!current.keys.includes(k) && !derived.some((p) => p.test(k))) strays.push(`${current.name}: ${k} (${c.args[0]})`);
      }
    }
    expect([...new Set(strays)]).toEqual([]);
    expect([...called].sort()).toEqual([...SCRIPT_NAMES].sort());
  });
});
