/**
 * A TCP proxy in front of the server that drops client connections at
 * random: some after a random number of bytes from the server (mid-message),
 * some after a random time (also while a stream is idle), some never. The
 * followers connect through one, so their streams really break and must
 * resume from their cursor; the submitter through another, so some replies
 * are lost after the server stored the jobs and the retried submit must be
 * deduplicated.
 */
import { connect, createServer, type Socket } from "node:net";
import type { Prng } from "./prng.js";

/** The running proxy. */
export interface DropProxy {
  /** Base URL to give the client instead of the server's. */
  readonly url: string;
  /** Connections cut by the proxy so far. */
  readonly drops: number;
  /** Cuts every connection and stops listening. */
  close(): Promise<void>;
}

/** How often and how soon connections are cut. */
export interface DropPolicy {
  /** Share of connections cut after a byte budget. */
  byBytes: number;
  /** Share of connections cut after a time budget (the rest are never cut). */
  byTime: number;
  bytes: [min: number, max: number];
  ms: [min: number, max: number];
}

/** For streams: cut mid-message or mid-wait, often. */
export const STREAM_DROPS: DropPolicy = { byBytes: 0.35, byTime: 0.35, bytes: [200, 6000], ms: [100, 2500] };

/** For submits: cut some connections somewhere in a reply (a SubmitSteps reply is a few KB). */
export const SUBMIT_DROPS: DropPolicy = { byBytes: 0.6, byTime: 0, bytes: [300, 20_000], ms: [0, 0] };

/** Starts a proxy to `target` (an http://host:port URL) on a free local port. */
export async function startDropProxy(target: string, rng: Prng, policy: DropPolicy): Promise<DropProxy> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  let drops = 0;

  const server = createServer((client) => {
    const upstream = connect(Number(port), hostname);
    sockets.add(client);
    sockets.add(upstream);
    let cut = false;
    const drop = () => {
      if (cut) return;
      cut = true;
      drops++;
      client.destroy();
      upstream.destroy();
    };
    const roll = rng.next();
    let budget = roll < policy.byBytes ? rng.int(...policy.bytes) : Number.POSITIVE_INFINITY;
    const timer = roll >= policy.byBytes && roll < policy.byBytes + policy.byTime ? setTimeout(drop, rng.int(...policy.ms)) : undefined;

    client.on("data", (d: Buffer) => upstream.write(d));
    upstream.on("data", (d: Buffer) => {
      if (d.length <= budget) {
        budget -= d.length;
        client.write(d);
        return;
      }
      // Forward part of this chunk, then cut: the client sees a torn message.
      client.write(d.subarray(0, budget), drop);
      budget = 0;
    });
    const end = () => {
      clearTimeout(timer);
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const s of [client, upstream]) {
      s.on("close", end);
      s.on("error", end);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const listenPort = typeof address === "object" && address ? address.port : 0;

  return {
    url: `http://127.0.0.1:${listenPort}`,
    get drops() {
      return drops;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
