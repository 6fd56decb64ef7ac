/**
 * Hand-written HTTP/1.x requests `node:http` would refuse to send: HTTP/1.0
 * without Host, an empty Host, broken chunking, both Content-Length and
 * Transfer-Encoding, oversize headers, HTTP/0.9, a half HTTP/2 preface.
 * `broken` says whether the framing itself is invalid (then a closed
 * connection is a fine answer); a well-formed one must get an HTTP answer.
 */
import type { Prng } from "./prng.js";

/** One raw request: its bytes, whether its framing is broken, and a label. */
export interface RawRequest {
  bytes: Buffer;
  broken: boolean;
  label: string;
  method: string;
  headers: Record<string, string>;
}

function http1(requestLine: string, headers: [string, string][], body: Buffer): Buffer {
  const head = [requestLine, ...headers.map(([k, v]) => `${k}: ${v}`), "", ""].join("\r\n");
  return Buffer.concat([Buffer.from(head, "latin1"), body]);
}

/** A raw request for RPC path `path`, carrying `jsonBody` where it has one. */
export function rawRequest(prng: Prng, path: string, jsonBody: Buffer): RawRequest {
  const getPath = `${path}?encoding=json&message=${encodeURIComponent(jsonBody.toString())}`;
  const json: [string, string][] = [
    ["Content-Type", "application/json"],
    ["Content-Length", String(jsonBody.length)],
  ];
  const variants: (() => RawRequest)[] = [
    () => ({ label: "raw:http1.0-get-no-host", broken: false, method: "GET", headers: {}, bytes: http1(`GET ${getPath} HTTP/1.0`, [], Buffer.alloc(0)) }),
    () => ({ label: "raw:http1.0-post-no-host", broken: false, method: "POST", headers: {}, bytes: http1(`POST ${path} HTTP/1.0`, json, jsonBody) }),
    () => ({ label: "raw:http1.1-empty-host", broken: false, method: "POST", headers: {}, bytes: http1(`POST ${path} HTTP/1.1`, [["Host", ""], ...json, ["Connection", "close"]], jsonBody) }),
    () => ({
      label: "raw:absolute-form-target",
      broken: false,
      method: "POST",
      headers: {},
      bytes: http1(`POST http://other.example${path} HTTP/1.1`, [["Host", "other.example"], ...json, ["Connection", "close"]], jsonBody),
    }),
    () => ({ label: "raw:http1.1-no-host", broken: true, method: "POST", headers: {}, bytes: http1(`POST ${path} HTTP/1.1`, [...json, ["Connection", "close"]], jsonBody) }),
    () => ({
      label: "raw:content-length-and-chunked",
      broken: true,
      method: "POST",
      headers: {},
      bytes: http1(`POST ${path} HTTP/1.1`, [["Host", "x"], ...json, ["Transfer-Encoding", "chunked"]], Buffer.from(`${jsonBody.length.toString(16)}\r\n${jsonBody}\r\n0\r\n\r\n`)),
    }),
    () => ({
      label: "raw:bad-chunk-size",
      broken: true,
      method: "POST",
      headers: {},
      bytes: http1(`POST ${path} HTTP/1.1`, [["Host", "x"], ["Content-Type", "application/json"], ["Transfer-Encoding", "chunked"]], Buffer.from(`zz\r\n${jsonBody}\r\n0\r\n\r\n`)),
    }),
    () => ({ label: "raw:body-shorter-than-length", broken: true, method: "POST", headers: {}, bytes: http1(`POST ${path} HTTP/1.1`, [["Host", "x"], ["Content-Type", "application/json"], ["Content-Length", String(jsonBody.length + 50)]], jsonBody) }),
    () => ({ label: "raw:header-without-colon", broken: true, method: "POST", headers: {}, bytes: Buffer.from(http1(`POST ${path} HTTP/1.1`, [["Host", "x"], ["X-Bad", "1"], ...json], jsonBody).toString("latin1").replace("X-Bad: 1", "X-Bad 1"), "latin1") }),
    () => ({ label: "raw:huge-header", broken: true, method: "POST", headers: {}, bytes: http1(`POST ${path} HTTP/1.1`, [["Host", "x"], ["X-Big", "a".repeat(prng.pick([20_000, 100_000]))], ...json], jsonBody) }),
    () => ({ label: "raw:http0.9", broken: true, method: "GET", headers: {}, bytes: Buffer.from(`GET ${path}\r\n\r\n`) }),
    () => ({ label: "raw:garbage", broken: true, method: "?", headers: {}, bytes: prng.bytes(prng.int(1, 300)) }),
    () => ({
      label: "raw:h2-preface-then-garbage",
      broken: true,
      method: "?",
      headers: {},
      bytes: Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), prng.bytes(prng.int(0, 200))]),
    }),
    () => ({ label: "raw:half-h2-preface", broken: true, method: "?", headers: {}, bytes: Buffer.from("PRI * HTTP/2.0\r\n").subarray(0, prng.int(1, 16)) }),
    () => ({
      label: "raw:pipelined",
      broken: false,
      method: "POST",
      headers: {},
      bytes: Buffer.concat([http1(`POST ${path} HTTP/1.1`, [["Host", "x"], ...json], jsonBody), http1(`GET /healthz HTTP/1.1`, [["Host", "x"], ["Connection", "close"]], Buffer.alloc(0))]),
    }),
    () => ({ label: "raw:nul-in-path", broken: true, method: "GET", headers: {}, bytes: http1(`GET ${path}\u0000x HTTP/1.1`, [["Host", "x"], ["Connection", "close"]], Buffer.alloc(0)) }),
  ];
  return prng.pick(variants)();
}
