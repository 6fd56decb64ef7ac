/**
 * Issue 14, item 6: Redis Cluster routes a script by the keys it declares,
 * and may only run it where every key it touches lives. Every stepq key
 * carries the queue's hash tag `{queue}`, so all of a queue's keys are in
 * one slot; a script declares the keys its caller knows up front (KEYS) and
 * derives the rest (a dependant's route, a job found in a list) from the
 * prefix in ARGV[1], inside that same slot.
 *
 * Checked two ways: statically, each script reads exactly the KEYS its
 * callers pass; and at run time, with MONITOR, every key any command of a
 * representative workload touched carries the queue's tag.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createRedis, waitReady } from "../queue/connection.js";
import { oneStepJob } from "../queue/prepare-job.js";
import { createQueue } from "../queue/queue.js";
import { readStreamView } from "../queue/stream-view.js";
import { connect, useRedis } from "./helpers/redis.js";
import { echo } from "./helpers/stack.js";
import { resultBytes } from "./helpers/queue.js";

const root = join(import.meta.dirname, "..");

/** Script name -> how many keys each call site passes (from the TypeScript sources of queue/). */
function keysPassed(): Map<string, Set<number>> {
  const out = new Map<string, Set<number>>();
  for (const file of readdirSync(join(root, "queue")).filter((f) => f.endsWith(".ts"))) {
    const src = readFileSync(join(root, "queue", file), "utf8");
    for (const m of src.matchAll(/(?:queueScript|leaseScript|runScript)\([^,]+,\s*"(\w+)",\s*(\[[^\]]*\]|\w+)/g)) {
      const [, name, keys] = m as unknown as [string, string, string];
      let n: number;
      if (keys.startsWith("[")) n = keys.slice(1, -1).split(",").filter((k) => k.trim() !== "").length;
      else {
        // A named array declared just before the call, e.g. `const keys = [a, b, c];`.
        const decl = new RegExp(`const ${keys} = \\[([^\\]]*)\\]`).exec(src);
        if (!decl) throw new Error(`${file}: cannot see which keys ${name} gets`);
        n = (decl[1] as string).split(",").filter((k) => k.trim() !== "").length;
      }
      if (!out.has(name)) out.set(name, new Set());
      out.get(name)?.add(n);
    }
  }
  return out;
}

describe("the keys each script declares", () => {
  it("every script reads exactly the KEYS its callers pass, and every script has a caller", () => {
    const passed = keysPassed();
    const scripts = readdirSync(join(root, "queue/scripts")).filter((f) => f.endsWith(".lua"));
    expect(scripts.length).toBeGreaterThan(15);
    for (const file of scripts) {
      const name = file.replace(/\.lua$/, "");
      const src = readFileSync(join(root, "queue/scripts", file), "utf8");
      const read = new Set([...src.matchAll(/KEYS\[(\d+)\]/g)].map((m) => Number(m[1])));
      const highest = Math.max(0, ...read);
      // KEYS[1..n], none skipped.
      expect([...read].sort((a, b) => a - b), name).toEqual(Array.from({ length: highest }, (_, i) => i + 1));
      expect([...(passed.get(name) ?? [])], `${name}: keys passed by its callers`).toEqual([highest]);
    }
  });
});

describe("the keys a workload touches", () => {
  it("all carry the queue's hash tag: one slot holds the queue", async () => {
    const redisProcess = await useRedis();
    const redis = await connect(redisProcess.url);
    const queue = createQueue({ redis, queue: "tagged" });
    const monitor = createRedis(redisProcess.url, "subscriber", { name: "stepq-test-monitor" });
    await waitReady(monitor);
    const commands: string[][] = [];
    const feed = await monitor.monitor();
    feed.on("monitor", (_time: string, args: string[]) => commands.push(args));
    try {
      await queue.publishLimits();
      const job = await queue.submit(
        queue.prepare({
          steps: [
            { name: "a", operation: echo({ text: "one" }) },
            { name: "b", operation: echo({ text: "two" }), dependsOn: ["a"] },
            { name: "c", operation: echo({ text: "three" }), retry: { maxAttempts: 1 } },
          ],
        }),
      );
      const claimed = (await queue.claim({ workerId: "w", routes: ["echo"], leaseMs: 60_000, max: 10 })).steps;
      const a = claimed.find((s) => s.name === "a");
      const c = claimed.find((s) => s.name === "c");
      if (!a || !c) throw new Error("claim did not return a and c");
      await queue.appendOutput(a, { firstSeq: 0, entries: [{ kind: "tokens", firstIndex: 0, texts: ["one"] }] });
      await queue.reportProgress(a, 0.5, "half");
      await queue.extendLeases([a, c], 60_000);
      await queue.settle({ workerId: "w", routes: ["echo"], leaseMs: 60_000, claimMax: 1, completions: [{ step: a, result: resultBytes("one"), trailing: { firstSeq: 1, entries: [] } }] });
      await queue.fail(c, { code: 2, message: "boom", retryable: false });
      await queue.retryStep(job.jobId, 2);
      await queue.cancel(job.jobId, undefined, "done testing");
      const dead = await queue.submit(queue.prepare(oneStepJob({ operation: echo({ text: "x" }), retry: { maxAttempts: 1 } })));
      const [d] = (await queue.claim({ workerId: "w", routes: ["echo"], leaseMs: 60_000, max: 1 })).steps;
      if (d) await queue.fail(d, { code: 2, message: "dead", retryable: false });
      await queue.purgeStep(dead.jobId, 0);
      const released = await queue.submit(queue.prepare(oneStepJob({ operation: echo({ text: "y" }) })));
      const [r] = (await queue.claim({ workerId: "w", routes: ["echo"], leaseMs: 60_000, max: 1 })).steps;
      if (r) await queue.release("w", [r]);
      await queue.readLog(job.jobId, "", 100);
      await queue.readEvents("", 100);
      await readStreamView(queue, released.jobId);
      await queue.sweep();
    } finally {
      feed.disconnect();
      monitor.disconnect();
    }

    // The keys of every command, as Redis itself finds them (COMMAND GETKEYS).
    const touched = new Set<string>();
    const withKeys = commands.filter((c) => c.length > 1 && !/^(monitor|command|client|hello|info|function|select|ping|publish)$/i.test(c[0] as string));
    for (const c of withKeys) {
      const keys = (await redis.call("COMMAND", "GETKEYS", ...c).catch(() => [])) as string[];
      for (const k of keys) touched.add(k);
    }
    expect(touched.size).toBeGreaterThan(10);
    const untagged = [...touched].filter((k) => !k.startsWith("stepq:{tagged}:"));
    expect(untagged).toEqual([]);
  });
});
