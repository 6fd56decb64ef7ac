/**
 * A TCP proxy that cuts every connection after it has carried `cutAfterBytes`
 * bytes from the server: a real dropped connection, mid-stream.
 */
import { createServer, type Server, type Socket, connect } from "node:net";
import { afterAll } from "vitest";

export interface FlakyProxy {
  url: string;
  /** Connections cut so far. */
  readonly cuts: number;
}

/** `maxCuts` limits how many connections are cut (later ones pass untouched). */
export async function useFlakyProxy(target: { host: string; port: number }, cutAfterBytes: number, maxCuts = Infinity): Promise<FlakyProxy> {
  let cuts = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    sockets.add(client);
    sockets.add(upstream);
    let carried = 0;
    const cutting = cuts < maxCuts;
    client.on("data", (d) => upstream.write(d));
    upstream.on("data", (d: Buffer) => {
      const room = cutAfterBytes - carried;
      carried += d.length;
      if (!cutting || carried <= cutAfterBytes) {
        client.write(d);
        return;
      }
      // Forward up to the limit, then cut: progress is made on every connection.
      cuts++;
      client.end(d.subarray(0, Math.max(0, room)), () => client.destroy());
      upstream.destroy();
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("close", end);
    upstream.on("close", end);
    client.on("error", end);
    upstream.on("error", end);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  afterAll(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    get cuts() {
      return cuts;
    },
  };
}
