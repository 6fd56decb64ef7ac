/**
 * A TCP proxy that cuts connections on purpose: each new connection is
 * planned as it arrives — cut after the server has sent some bytes (the
 * client sees a torn message), after some time (also while a stream is
 * idle), or never. Tests and the chaos run put it between a client and the
 * server so streams really break and must resume from their cursor.
 */
import { connect, createServer, type Socket } from "node:net";

/** When to cut one connection; an empty plan passes it untouched. */
export interface CutPlan {
  /** Cut once the server has sent this many bytes (that many reach the client). */
  afterBytes?: number;
  /** Cut after this many ms. */
  afterMs?: number;
}

/** The running proxy. */
export interface CuttingProxy {
  /** Base URL to give the client instead of the server's. */
  readonly url: string;
  /** Connections cut by the proxy so far. */
  readonly cuts: number;
  /** Cuts every connection and stops listening. */
  close(): Promise<void>;
}

/** Starts a proxy to `target` on a free local port; `plan` is asked once per connection, with the cuts so far. */
export async function startCuttingProxy(target: { host: string; port: number }, plan: (cutsSoFar: number) => CutPlan): Promise<CuttingProxy> {
  const sockets = new Set<Socket>();
  let cuts = 0;

  const server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    sockets.add(client);
    sockets.add(upstream);
    const { afterBytes, afterMs } = plan(cuts);
    let cutDone = false;
    const cut = () => {
      if (cutDone) return;
      cutDone = true;
      cuts++;
      client.destroy();
      upstream.destroy();
    };
    let budget = afterBytes ?? Number.POSITIVE_INFINITY;
    const timer = afterMs === undefined ? undefined : setTimeout(cut, afterMs);

    client.on("data", (d: Buffer) => upstream.write(d));
    upstream.on("data", (d: Buffer) => {
      if (d.length <= budget) {
        budget -= d.length;
        client.write(d);
        return;
      }
      // Forward part of this chunk, then cut: the client sees a torn message.
      client.write(d.subarray(0, budget), cut);
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
    get cuts() {
      return cuts;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
