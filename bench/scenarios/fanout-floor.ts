/**
 * The token followers' floor, measured in the same round as they are: a
 * bare node:http server (bench/workers/fanout-server.ts) writes one small
 * chunk to as many open responses on the followers' clock, and this process
 * receives them as the followers' client would. p50/p99 of write→receive
 * and the median tick's last receipt, over HTTP/1.1 (the client's default)
 * and HTTP/2 (one connection): what the last two hops alone cost, with no
 * worker, Redis or queue logic.
 */
import { Agent, get as httpGet } from "node:http";
import { connect as http2Connect } from "node:http2";
import { startChild } from "../lib/child.js";
import type { BenchContext } from "../lib/context.js";
import { nowMs, percentile } from "../lib/stats.js";

/** The client's HTTP version in a follower wave (and the floor it is read against). */
export type Proto = "h1" | "h2";

/** The followers' pace: tokens per step and ms between them. */
export interface Pace {
  tokenCount: number;
  tokenDelayMs: number;
}

/** Write→receive latencies of one bare fan-out run, and per tick its last receipt (ms). */
async function fanoutOnce(port: number, n: number, ticks: number, everyMs: number, proto: Proto): Promise<{ latencies: number[]; lasts: number[] }> {
  const path = `/fanout?n=${n}&ticks=${ticks}&every=${everyMs}`;
  const latencies: number[] = [];
  const lastOf = new Map<string, number>();
  // Per response: a stamp may arrive split across two reads.
  const reader = () => {
    let partial = "";
    return (chunk: Buffer) => {
      const now = nowMs();
      const stamps = (partial + chunk.toString("latin1")).split("|");
      partial = stamps.pop() as string;
      for (const stamp of stamps) {
        const ms = now - Number(stamp);
        latencies.push(ms);
        lastOf.set(stamp, Math.max(lastOf.get(stamp) ?? 0, ms));
      }
    };
  };
  const agent = new Agent({ keepAlive: true });
  const session = proto === "h2" ? http2Connect(`http://127.0.0.1:${port}`) : undefined;
  try {
    await Promise.all(
      Array.from({ length: n }, () =>
        new Promise<void>((resolve, reject) => {
          if (session) {
            const req = session.request({ ":path": path });
            req.on("data", reader()).on("end", resolve).on("error", reject);
            req.end();
          } else {
            httpGet({ host: "127.0.0.1", port, path, agent }, (res) => res.on("data", reader()).on("end", resolve).on("error", reject)).on("error", reject);
          }
        }),
      ),
    );
  } finally {
    session?.close();
    agent.destroy();
  }
  return { latencies, lasts: [...lastOf.values()] };
}

/**
 * The followers' floor, once per follower count and
 * protocol: an unmeasured short run, then one of as many ticks as a
 * follower's tokens.
 */
export async function fanoutFloors(ctx: BenchContext, counts: readonly number[], pace: Pace): Promise<void> {
  for (const proto of ["h1", "h2"] as const) {
    const server = startChild("bench/workers/fanout-server.ts", proto === "h2" ? ["--h2"] : []);
    try {
      const port = Number((await server.waitFor(/listening (\d+)/))[1]);
      const name = proto === "h2" ? "HTTP/2, one connection" : "HTTP/1.1";
      for (const n of counts) {
        await fanoutOnce(port, n, 10, pace.tokenDelayMs, proto);
        const m = await fanoutOnce(port, n, pace.tokenCount, pace.tokenDelayMs, proto);
        const label = `bare fan-out, ${n} responses, ${name}`;
        ctx.results.ceiling(`fanout.${proto}.f${n}.p50`, `${label}, p50`, "ms", percentile(m.latencies, 50));
        ctx.results.ceiling(`fanout.${proto}.f${n}.p99`, `${label}, p99`, "ms", percentile(m.latencies, 99));
        ctx.results.ceiling(`fanout.${proto}.f${n}.last`, `${label}, a tick's last receipt (median)`, "ms", percentile(m.lasts, 50));
      }
    } finally {
      await server.stop();
    }
  }
}
