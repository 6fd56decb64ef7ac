/**
 * Sends a request over HTTP/2 cleartext with `node:http2`. Requests share a
 * few sessions, as real gRPC clients do; a session the server closed (or
 * broke with a GOAWAY) is replaced on the next request.
 */
import * as http2 from "node:http2";
import { keep, type ReadLimits, readBudgetMs } from "./read-limits.js";
import type { WireRequest, WireResponse } from "./wire-request.js";

export interface H2cSender {
  send(req: WireRequest): Promise<WireResponse>;
  close(): void;
}

const HOP_HEADERS = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection", "host"]);

export function createH2cSender(baseUrl: () => string, limits: ReadLimits, sessionCount = 4): H2cSender {
  const sessions: (http2.ClientHttp2Session | undefined)[] = new Array(sessionCount).fill(undefined);
  let turn = 0;
  const oneOff = new Set<http2.ClientHttp2Session>();
  const isolatedSession = (): http2.ClientHttp2Session => {
    const s = http2.connect(baseUrl());
    s.on("error", () => {});
    oneOff.add(s);
    return s;
  };
  const session = (): http2.ClientHttp2Session => {
    const i = turn++ % sessionCount;
    let s = sessions[i];
    if (!s || s.closed || s.destroyed) {
      s = http2.connect(baseUrl());
      s.on("error", () => {});
      s.on("goaway", () => s?.close());
      sessions[i] = s;
    }
    return s;
  };
  return {
    close() {
      for (const s of sessions) s?.destroy();
      for (const s of oneOff) s.destroy();
    },
    send(wire) {
      const started = performance.now();
      return new Promise<WireResponse>((resolve) => {
        const res: WireResponse = { status: 0, headers: {}, trailers: {}, body: Buffer.alloc(0), end: "complete", elapsedMs: 0 };
        const kept: Buffer[] = [];
        const size: { n: number; truncated?: boolean } = { n: 0 };
        let done = false;
        let stream: http2.ClientHttp2Stream | undefined;
        const own = wire.isolated ? isolatedSession() : undefined;
        const finish = (end: WireResponse["end"], error?: string) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          res.end = end;
          if (error !== undefined) res.error = error;
          res.body = Buffer.concat(kept);
          if (size.truncated) res.truncated = true;
          res.elapsedMs = performance.now() - started;
          if (stream && !stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
          if (own) {
            own.destroy();
            oneOff.delete(own);
          }
          resolve(res);
        };
        const timer = setTimeout(
          () => finish(wire.streaming && wire.deadlineMs === undefined ? "cut" : "timeout"),
          readBudgetMs(limits, wire.streaming, wire.deadlineMs),
        );
        const headers: http2.OutgoingHttpHeaders = { ":method": wire.method, ":path": wire.path };
        for (const [k, v] of Object.entries(wire.headers)) if (!HOP_HEADERS.has(k.toLowerCase())) headers[k.toLowerCase()] = v;
        try {
          stream = (own ?? session()).request(headers, { endStream: wire.body.length === 0 });
        } catch (e) {
          finish("client-refused", (e as Error).message);
          return;
        }
        stream.on("response", (h) => {
          for (const [k, v] of Object.entries(h)) if (k === ":status") res.status = Number(v);
          else res.headers[k] = Array.isArray(v) ? v.join(", ") : String(v);
        });
        stream.on("trailers", (t) => {
          for (const [k, v] of Object.entries(t)) res.trailers[k] = Array.isArray(v) ? v.join(", ") : String(v);
        });
        stream.on("data", (chunk: Buffer) => keep(kept, size, chunk, limits.bodyCap));
        stream.on("end", () => finish("complete"));
        stream.on("close", () => finish(stream?.rstCode ? "reset" : "complete", stream?.rstCode ? `RST_STREAM ${stream.rstCode}` : undefined));
        stream.on("error", (e) => finish("reset", e.message));
        if (wire.body.length > 0) stream.end(wire.body);
      });
    },
  };
}
