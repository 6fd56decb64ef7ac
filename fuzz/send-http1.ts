/**
 * Sends a request over HTTP/1.1 with `node:http` (keep-alive connections,
 * as real clients use them).
 */
import * as http from "node:http";
import { keep, type ReadLimits, readBudgetMs } from "./read-limits.js";
import type { WireRequest, WireResponse } from "./wire-request.js";

type SocketWithHistory = import("node:net").Socket & { lastFuzzRequest?: string };

/** A sender bound to a base URL; `close` drops its idle connections. */
export interface Http1Sender {
  send(req: WireRequest): Promise<WireResponse>;
  close(): void;
}

export function createHttp1Sender(baseUrl: () => string, limits: ReadLimits): Http1Sender {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  return {
    close: () => agent.destroy(),
    send(wire) {
      const started = performance.now();
      return new Promise<WireResponse>((resolve) => {
        const res: WireResponse = { status: 0, headers: {}, trailers: {}, body: Buffer.alloc(0), end: "complete", elapsedMs: 0 };
        const kept: Buffer[] = [];
        const size: { n: number; truncated?: boolean } = { n: 0 };
        let done = false;
        const finish = (end: WireResponse["end"], error?: string) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          res.end = end;
          if (error !== undefined) res.error = error;
          res.body = Buffer.concat(kept);
          if (size.truncated) res.truncated = true;
          res.elapsedMs = performance.now() - started;
          resolve(res);
        };
        const budget = readBudgetMs(limits, wire.streaming, wire.deadlineMs);
        const timer = setTimeout(() => {
          req?.destroy();
          finish(wire.streaming && wire.deadlineMs === undefined ? "cut" : "timeout");
        }, budget);
        let req: http.ClientRequest | undefined;
        try {
          // The path goes out as is (a path like "//x" must not become a host).
          const { hostname, port } = new URL(baseUrl());
          // node:http frames a HEAD or GET body with no length at all (the server then sees stray
          // bytes after the request and rightly closes): say its length, as a real client would.
          const headers: Record<string, string> = { ...wire.headers };
          if (wire.body.length > 0 && !("content-length" in headers) && !("transfer-encoding" in headers)) {
            headers["content-length"] = String(wire.body.length);
          }
          const agentFor = wire.isolated ? false : agent;
          req = http.request({ hostname, port, path: wire.path, method: wire.method, headers, agent: agentFor, setHost: !("host" in wire.headers) });
        } catch (e) {
          finish("client-refused", (e as Error).message);
          return;
        }
        req.on("response", (incoming) => {
          res.status = incoming.statusCode ?? 0;
          for (const [k, v] of Object.entries(incoming.headers)) res.headers[k] = Array.isArray(v) ? v.join(", ") : String(v);
          incoming.on("data", (chunk: Buffer) => keep(kept, size, chunk, limits.bodyCap));
          incoming.on("end", () => {
            for (const [k, v] of Object.entries(incoming.trailers)) res.trailers[k] = String(v);
            finish("complete");
          });
          incoming.on("error", (e) => finish("reset", e.message));
          incoming.on("aborted", () => finish("reset", "aborted"));
        });
        // On a kept-alive connection, a failure names the request that used it before (to replay the pair).
        let before: string | undefined;
        req.on("socket", (socket: SocketWithHistory) => {
          if (socket.lastFuzzRequest !== undefined) before = socket.lastFuzzRequest;
          socket.lastFuzzRequest = `#${wire.index} ${wire.rpc} (${wire.protocol}; ${wire.mutations.join(" ") || "no mutations"})`;
        });
        req.on("error", (e) => finish("reset", before === undefined ? e.message : `${e.message} on a reused connection; the request before on it: ${before}`));
        req.end(wire.body.length > 0 ? wire.body : undefined);
      });
    },
  };
}
